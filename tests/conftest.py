from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared"
sys.path.insert(0, str(DATA))  # tests/data/fake_calculators.py, for module:factory references
sys.path.insert(0, str(Path(__file__).parent))  # tests_support
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DATA), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_task_path() -> Path:
    return DATA / "tiny_task.yaml"


@pytest.fixture(scope="session")
def tiny_preset_path() -> Path:
    return DATA / "tiny_preset.yaml"


@pytest.fixture(scope="session")
def tiny_task(tiny_task_path):
    from gmdbench.tasks.spec import load_task

    return load_task(tiny_task_path)


@pytest.fixture(scope="session")
def tiny_preset(tiny_preset_path):
    from gmdbench.config import load_preset

    return load_preset(str(tiny_preset_path))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, tiny_task, tiny_preset):
    """A real GFN2-xTB dataset of the tiny task, built once per session."""
    from gmdbench.data.generate import build_dataset
    from gmdbench.reference.registry import ReferenceConfig

    out = tmp_path_factory.mktemp("tiny") / "tiny.db"
    report = build_dataset(tiny_task, tiny_preset, ReferenceConfig(), seed=7, out=out, workers=2)
    assert not report.failures
    return out


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, tiny_dataset):
    """SchNet (two seeds) and MACE trained briefly on the tiny dataset, evaluated and recorded."""
    from gmdbench.config import TrainConfig
    from gmdbench.data.store import DatasetStore
    from gmdbench.runner.executor import evaluate_run, train_run
    from gmdbench.runner.results import ResultsStore
    from gmdbench.runner.runs import RunConfig

    root = tmp_path_factory.mktemp("runs")
    results = ResultsStore(root / "results.db")
    dataset_hash = DatasetStore(tiny_dataset).content_hash()
    training = TrainConfig(epochs=3, batch_size=4)
    run_dirs = []
    for model, options, seed in [("schnet", {"hidden_channels": 16, "num_filters": 16}, 0),
                                 ("schnet", {"hidden_channels": 16, "num_filters": 16}, 1),
                                 ("mace", {"hidden_irreps": "8x0e + 8x1o",
                                           "radial_mlp": [8, 8]}, 0)]:
        run = RunConfig(task="tiny_alkanes", model=model, model_options=options,
                        training=training, seed=seed, dataset_hash=dataset_hash)
        run_dir = train_run(run, tiny_dataset, root / "runs")
        evaluate_run(run_dir, results)
        run_dirs.append(run_dir)
    return results, run_dirs


# -- the summary shows code tests and archive checks apart (issue 29) ------------------------
# Archive checks (`-m archive`) recompute the committed reference numbers with numpy alone: no
# code change can fail them, so they are counted apart from the tests of the code.
_ARCHIVE_CHECKS: set[str] = set()
_OUTCOMES: dict[str, dict[str, int]] = {"code tests": {}, "archive checks": {}}


def pytest_collection_modifyitems(config, items):
    _ARCHIVE_CHECKS.update(item.nodeid for item in items if item.get_closest_marker("archive"))


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        kind = "archive checks" if report.nodeid in _ARCHIVE_CHECKS else "code tests"
        counts = _OUTCOMES[kind]
        counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter):
    for kind, counts in _OUTCOMES.items():
        if counts:
            terminalreporter.write_line(
                f"{kind}: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
