"""Checkpoints: a kill during a write cannot tear them; a torn or foreign file is one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from gmdbench.config import TrainConfig
from gmdbench.data.store import DatasetStore
from gmdbench.errors import CheckpointError
from gmdbench.runner.executor import evaluate_run, train_run
from gmdbench.runner.results import ResultsStore
from gmdbench.runner.runs import RunConfig, load_potential

OPTIONS = {"hidden_channels": 8, "num_filters": 8}


def _run(tiny_dataset, model="schnet", epochs=3, options=OPTIONS) -> RunConfig:
    return RunConfig(task="tiny_alkanes", model=model, model_options=options,
                     training=TrainConfig(epochs=epochs, batch_size=4),
                     dataset_hash=DatasetStore(tiny_dataset).content_hash())


SLOW_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import torch
    import gmdbench.files as files
    from gmdbench.runner.executor import train_run
    from gmdbench.runner.runs import RunConfig

    real_save = torch.save
    writes = []
    def slow_save(obj, target):
        real_save(obj, target)
        data = Path(target).read_bytes()
        if "checkpoint.pt" in Path(target).name:
            writes.append(target)
        if "checkpoint.pt" in Path(target).name and len(writes) == 2:  # epoch 1's
            Path(target).write_bytes(data[: len(data) // 2])  # half written...
            print("WRITING", flush=True)
            sys.stdin.readline()                               # ...until the kill comes
            Path(target).write_bytes(data)
    files.torch.save = slow_save
    run = RunConfig.model_validate_json(sys.argv[1])
    train_run(run, Path(sys.argv[2]), Path(sys.argv[3]))
""")


def test_kill_during_a_checkpoint_write_then_the_same_run_resumes(tiny_dataset, tmp_path):
    run = _run(tiny_dataset)
    child = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, run.model_dump_json(),
                              str(tiny_dataset), str(tmp_path / "runs")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    line = ""
    while "WRITING" not in line:  # the child says when it is inside the write: no clock
        line = child.stdout.readline()
        if not line:  # it ended without reaching the write
            break
    assert "WRITING" in line, "the child never reached a checkpoint write"
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    run_dir = run.run_dir(tmp_path / "runs")
    # epoch 0's checkpoint is whole (a plain torch.save would have left half of epoch 1's)
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["state"]["epoch"] == 1
    assert any(p.name.startswith(".checkpoint.pt") for p in run_dir.iterdir())  # torn temp
    train_run(run, tiny_dataset, tmp_path / "runs")  # the same command: resumes, completes
    assert (run_dir / "training.json").exists()
    assert load_potential(run_dir) is not None


def test_a_torn_checkpoint_is_one_line_naming_it(tiny_dataset, tmp_path):
    run = _run(tiny_dataset, epochs=2)
    run_dir = run.run_dir(tmp_path / "runs")
    train_run(run, tiny_dataset, tmp_path / "runs")
    (run_dir / "training.json").unlink()
    data = (run_dir / "checkpoint.pt").read_bytes()
    (run_dir / "checkpoint.pt").write_bytes(data[: len(data) // 3])  # torn by another tool
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint\.pt is unreadable.*"
                                              r"delete it"):
        train_run(run.model_copy(), tiny_dataset, tmp_path / "runs")


def test_torn_or_missing_best_weights_say_what_to_delete_and_that_works(tiny_dataset,
                                                                        tmp_path):
    """A finished run whose best.pt was torn, then deleted: no dead end. Both messages name the
    run directory to delete, and deleting it lets the same command train the run again."""
    from gmdbench.errors import GmdError

    run = _run(tiny_dataset, epochs=2)
    run_dir = train_run(run, tiny_dataset, tmp_path / "runs")
    results = ResultsStore(tmp_path / "results.db")
    data = (run_dir / "best.pt").read_bytes()
    (run_dir / "best.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="delete the run directory") as torn:
        evaluate_run(run_dir, results)
    assert str(run_dir) in str(torn.value) and "\n" not in str(torn.value)
    (run_dir / "best.pt").unlink()
    with pytest.raises(GmdError, match="delete the run directory") as missing:
        train_run(run, tiny_dataset, tmp_path / "runs")
    assert str(run_dir) in str(missing.value)
    import shutil

    shutil.rmtree(run_dir)  # what both messages say
    again = train_run(run, tiny_dataset, tmp_path / "runs")
    evaluate_run(again, results)
    assert (again / "best.pt").exists()


def test_weights_of_another_model_are_one_line_naming_the_file(tiny_dataset, tmp_path):
    schnet = _run(tiny_dataset, epochs=1)
    painn = _run(tiny_dataset, model="painn", epochs=1, options={"hidden_channels": 8})
    schnet_dir = train_run(schnet, tiny_dataset, tmp_path / "runs")
    painn_dir = train_run(painn, tiny_dataset, tmp_path / "runs")
    (schnet_dir / "best.pt").write_bytes((painn_dir / "best.pt").read_bytes())
    with pytest.raises(CheckpointError, match=r"best\.pt holds weights of another model") as e:
        load_potential(schnet_dir)
    assert "\n" not in str(e.value) and len(str(e.value)) < 400


def test_evaluate_refuses_a_dataset_rebuilt_at_the_same_path(tiny_dataset, tmp_path):
    """Metrics of a rebuilt dataset must never be recorded under the run's old dataset hash."""
    import shutil

    from gmdbench.errors import DatasetMismatchError

    data = tmp_path / "data.db"
    shutil.copyfile(tiny_dataset, data)
    run = RunConfig(task="tiny_alkanes", model="schnet", model_options=OPTIONS,
                    training=TrainConfig(epochs=1, batch_size=4),
                    dataset_hash=DatasetStore(data).content_hash())
    run_dir = train_run(run, data, tmp_path / "runs")
    store = DatasetStore(data, write=True)
    store.metadata = {**store.metadata, "seed": 99}  # "rebuilt": other content, same path
    new_hash = DatasetStore(data).content_hash()
    with pytest.raises(DatasetMismatchError) as error:
        evaluate_run(run_dir, ResultsStore(tmp_path / "results.db"))
    assert new_hash[:16] in str(error.value) and run.dataset_hash[:16] in str(error.value)
    assert ResultsStore(tmp_path / "results.db").runs() == []


def test_atomic_files_take_the_users_umask(tmp_path):
    """Results written atomically are readable by colleagues (0644 under umask 022), not the
    0600 of a temporary file; a stricter umask is respected."""
    import stat

    from gmdbench.files import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.json", "{}")
        os.umask(0o077)
        write_text(tmp_path / "b.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o600


def test_a_torch_write_failure_is_one_line_naming_the_file(tmp_path, monkeypatch):
    """torch reports a full disk as a RuntimeError; it becomes the StorageError every write
    gives, and the old file stays."""
    from gmdbench.errors import StorageError
    from gmdbench.files import save_torch

    target = tmp_path / "checkpoint.pt"
    save_torch({"epoch": 1}, target)

    def full_disk(obj, path):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter "
                           "failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(StorageError, match=r"cannot write .*checkpoint\.pt: .*file write"):
        save_torch({"epoch": 2}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no half-made temp
