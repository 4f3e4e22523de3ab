from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))  # tests/data/fake_calculators.py, for module:factory references
sys.path.insert(0, str(Path(__file__).parent))  # tests_support
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DATA), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("OMP_NUM_THREADS", "1")


# -- session fixtures kept between pytest processes, for mutation testing only ----------------
# bench/mutation.py runs one module's tests once per mutant, each a new pytest process that
# would rebuild the tiny dataset and retrain three models (~16 s of a ~30 s run). Where the
# mutated module takes no part in building them (checked there), it sets this variable to a
# directory: the first process builds the fixtures there and keeps a pristine copy, later ones
# restore that copy at the same absolute path (results stores record run paths). Only the
# fixtures named in GMD_TEST_CACHED_FIXTURES ("tiny", "runs") are kept. Unset (the suite, CI)
# every session builds its own.
FIXTURE_CACHE_VARIABLE = "GMD_TEST_FIXTURE_CACHE"
CACHED_FIXTURES_VARIABLE = "GMD_TEST_CACHED_FIXTURES"


def _fixture_cache() -> Path | None:
    """The mutation bench's cache directory; None in an ordinary test session."""
    cache = os.environ.get(FIXTURE_CACHE_VARIABLE)
    return Path(cache) if cache else None


def _cached(name: str) -> bool:
    """Whether session fixture ``name`` is kept in the cache."""
    return (_fixture_cache() is not None
            and name in os.environ.get(CACHED_FIXTURES_VARIABLE, "").split(","))


def _session_fixture_dir(tmp_path_factory, name: str) -> tuple[Path, bool]:
    """Where a session fixture builds ``name``, and whether it was restored from the cache."""
    if not _cached(name):
        return tmp_path_factory.mktemp(name), False
    cache = _fixture_cache()
    live, pristine = cache / "live" / name, cache / "pristine" / name
    shutil.rmtree(live, ignore_errors=True)  # a test may have changed it
    if (pristine / ".complete").exists():
        shutil.copytree(pristine, live)
        return live, True
    live.mkdir(parents=True)
    return live, False


def _snapshot_session_fixture(live: Path) -> None:
    """Keep a pristine copy of a freshly built cached fixture (no-op outside the cache)."""
    if not _cached(live.name):
        return
    pristine = _fixture_cache() / "pristine" / live.name
    partial = pristine.with_name(pristine.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(pristine, ignore_errors=True)
    shutil.copytree(live, partial)
    (partial / ".complete").touch()
    partial.rename(pristine)


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

    root, cached = _session_fixture_dir(tmp_path_factory, "tiny")
    out = root / "tiny.db"
    if not cached:
        report = build_dataset(tiny_task, tiny_preset, ReferenceConfig(), seed=7, out=out,
                               workers=2)
        assert not report.failures
        _snapshot_session_fixture(root)
    return out


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, tiny_dataset):
    """SchNet (two seeds) and MACE trained briefly on the tiny dataset, evaluated and recorded."""
    from gmdbench.config import TrainConfig
    from gmdbench.data.store import DatasetStore
    from gmdbench.runner.executor import evaluate_run, train_run
    from gmdbench.runner.results import ResultsStore
    from gmdbench.runner.runs import RunConfig

    root, cached = _session_fixture_dir(tmp_path_factory, "runs")
    if cached:
        names = json.loads((root / "run_dirs.json").read_text())
        return ResultsStore(root / "results.db"), [root / "runs" / name for name in names]
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
    (root / "run_dirs.json").write_text(json.dumps([path.name for path in run_dirs]))
    _snapshot_session_fixture(root)
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
