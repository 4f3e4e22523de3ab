import itertools
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing

import numpy as np
import pytest
from tblite.ase import TBLite

from gmdbench.config import PresetConfig, SamplerConfig, TrajectoriesPerRole, load_preset
from gmdbench.data.completeness import completeness
from gmdbench.data.generate import build_dataset
from gmdbench.data.store import DatasetStore
from gmdbench.errors import DatasetMismatchError, UnsupportedElementError
from gmdbench.reference.registry import ReferenceConfig
from gmdbench.tasks.spec import load_task


def test_every_frame_is_recorded_with_its_metadata(tiny_dataset, tiny_task, tiny_preset):
    store = DatasetStore(tiny_dataset)
    per_trajectory = tiny_preset.sampler.frames_per_trajectory
    n_train = sum(m.role == "train" for m in tiny_task.molecules())
    n_ood = len(tiny_task.molecules()) - n_train
    assert store.count() == per_trajectory * (4 * n_train + 1 * n_ood)
    row = next(store.rows())
    for key in ("smiles", "molecule_id", "trajectory_id", "frame", "split", "temperature",
                "seed", "level_of_theory"):
        assert key in row.key_value_pairs
    metadata = store.metadata
    assert set(metadata["isolated_atom_energies"]) == {"H", "C"}
    assert metadata["seed"] == 7 and metadata["level_of_theory"].startswith("GFN2-xTB")


def test_stored_labels_equal_direct_tblite_calls(tiny_dataset):
    store = DatasetStore(tiny_dataset)
    for row in list(store.rows())[::7]:
        atoms = store.to_atoms(row)
        atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
        assert atoms.get_potential_energy() == pytest.approx(row.energy, abs=1e-7)
        np.testing.assert_allclose(atoms.get_forces(), row.forces, atol=1e-7)


def test_no_molecule_crosses_roles_and_no_trajectory_crosses_splits(tiny_dataset, tiny_task):
    store = DatasetStore(tiny_dataset)
    roles = {m.smiles: m.role for m in tiny_task.molecules()}
    split_of_trajectory = {}
    for row in store.rows():
        assert (row.split == "ood_test") == (roles[row.smiles] == "ood")
        assert split_of_trajectory.setdefault(row.trajectory_id, row.split) == row.split
    splits_per_molecule = {}
    for trajectory, split in split_of_trajectory.items():
        splits_per_molecule.setdefault(trajectory.split(":")[0], []).append(split)
    for splits in splits_per_molecule.values():
        assert sorted(set(splits)) in (["id_test", "train", "val"], ["ood_test"])


def test_md_frames_are_a_real_trajectory(tiny_dataset, tiny_preset):
    store = DatasetStore(tiny_dataset)
    rows = sorted(store.rows(trajectory_id="0:train:0"), key=lambda r: r.frame)
    assert [r.frame for r in rows] == list(range(tiny_preset.sampler.frames_per_trajectory))
    steps = [np.abs(b.positions - a.positions).max() for a, b in itertools.pairwise(rows)]
    assert all(0.001 < s < 0.5 for s in steps)  # moved, but continuously
    assert all(r.get("momenta") is not None for r in rows)


def test_same_seed_same_hash_other_seed_other_hash(tiny_task, tiny_preset, tiny_dataset,
                                                   tmp_path):
    again = tmp_path / "again.db"
    build_dataset(tiny_task, tiny_preset, ReferenceConfig(), seed=7, out=again, workers=1)
    assert DatasetStore(again).content_hash() == DatasetStore(tiny_dataset).content_hash()
    other = tmp_path / "other.db"
    build_dataset(tiny_task, tiny_preset, ReferenceConfig(), seed=8, out=other, workers=2)
    assert DatasetStore(other).content_hash() != DatasetStore(tiny_dataset).content_hash()


def test_rerun_of_a_complete_build_computes_nothing(tiny_task, tiny_preset, tiny_dataset):
    before = DatasetStore(tiny_dataset).content_hash()
    report = build_dataset(tiny_task, tiny_preset, ReferenceConfig(), seed=7, out=tiny_dataset)
    assert report.frames_written == 0 and report.frames_existing == report.frames_total
    assert DatasetStore(tiny_dataset).content_hash() == before


def test_a_different_config_cannot_resume_a_dataset(tiny_task, tiny_preset, tiny_dataset):
    with pytest.raises(DatasetMismatchError, match="seed"):
        build_dataset(tiny_task, tiny_preset, ReferenceConfig(), seed=99, out=tiny_dataset)


def _count_rows(path) -> int:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute("SELECT COUNT(*) FROM systems").fetchone()[0]


def test_killed_build_resumes_to_the_same_hash(tmp_path, tiny_task_path):
    """Killed mid-build (the labelling worker pauses at its 250th call and says so through a
    FIFO: no clock), the same command finishes it to the hash of an uninterrupted build."""
    from tests_support import DATA

    preset = DATA / "resume_preset.yaml"
    command = [sys.executable, "-m", "gmdbench.cli", "data", "build", str(tiny_task_path),
               "--preset", str(preset), "--workers", "1", "--seed", "5",
               "--reference", "fake_calculators:PausesAfterCalls"]
    killed = tmp_path / "killed.db"
    fifo = tmp_path / "paused"
    os.mkfifo(fifo)
    process = subprocess.Popen([*command, "--out", str(killed)], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "GMD_PAUSE_FIFO": str(fifo),
                                    "GMD_PAUSE_AFTER": "250"})
    with open(fifo) as paused:  # blocks until the worker has made 250 calls
        assert paused.readline() == "PAUSED\n"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    partial = _count_rows(killed)
    total = 10 * (4 * 2 + 2 * 1)  # resume_preset: 10 frames; 2 train x 4, 1 OOD x 2
    assert 0 < partial < total, "the build should have been killed part-way"
    # the half-built dataset says so, and nothing trains on it
    state = completeness(DatasetStore(killed, write=False))
    assert not state.complete and state.done == partial and state.planned == total
    info = subprocess.run([sys.executable, "-m", "gmdbench.cli", "data", "info", str(killed)],
                          capture_output=True, text=True)
    assert f"incomplete: {partial} of {total} frames" in info.stdout
    train = subprocess.run([sys.executable, "-m", "gmdbench.cli", "train", "--task",
                            str(tiny_task_path), "--model", "schnet", "--data", str(killed),
                            "--runs", str(tmp_path / "runs")], capture_output=True, text=True)
    assert train.returncode == 2 and "incomplete" in train.stderr
    assert len(train.stderr.strip().splitlines()) == 1
    resumed = subprocess.run([*command, "--out", str(killed)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    clean = tmp_path / "clean.db"
    subprocess.run([*command, "--out", str(clean)], check=True, capture_output=True)
    store = DatasetStore(killed)
    assert store.count() == total
    assert completeness(store).complete
    keys = [(r.trajectory_id, r.frame) for r in store.rows()]
    assert len(keys) == len(set(keys))  # no duplicated frame
    assert store.content_hash() == DatasetStore(clean).content_hash()


def test_failures_are_recorded_and_do_not_stop_other_molecules(tmp_path, tiny_task, tiny_preset):
    out = tmp_path / "nan.db"
    reference = ReferenceConfig(name="fake_calculators:NaNForcesForPropane")
    report = build_dataset(tiny_task, tiny_preset, reference, seed=1, out=out, workers=1)
    store = DatasetStore(out)
    assert [f["smiles"] for f in report.failures] == ["CCC"]
    assert "non-finite forces" in report.failures[0]["reason"]
    assert store.count() == 4 * 2 * tiny_preset.sampler.frames_per_trajectory
    # the failure ended propane's chain: the build is finished, not incomplete
    assert completeness(store).complete
    # resuming does not retry a recorded failure, and loses nothing
    before = store.content_hash()
    report = build_dataset(tiny_task, tiny_preset, reference, seed=1, out=out, workers=1)
    assert report.frames_written == 0 and DatasetStore(out).content_hash() == before


def test_a_bug_stops_the_build_instead_of_becoming_a_failed_frame(tmp_path, tiny_task,
                                                                  tiny_preset):
    """Only the reference method's own failures are failed frames; a TypeError from a bug is
    not recorded (it would let --allow-failures exit 0) but stops the build, keeping what is
    written."""
    out = tmp_path / "bug.db"
    reference = ReferenceConfig(name="fake_calculators:TypeErrorForPropane")
    with pytest.raises(TypeError, match="simulated bug"):
        build_dataset(tiny_task, tiny_preset, reference, seed=1, out=out, workers=1)
    store = DatasetStore(out)
    assert store.failures() == []
    assert all(row.smiles != "CCC" for row in store.rows())


def test_unsupported_element_is_refused_before_any_work(tmp_path):
    task_path = tmp_path / "chloro.yaml"
    task_path.write_text("name: chloro\nfamilies:\n"
                         "  - {name: a, role: train, smiles: [CC]}\n"
                         "  - {name: b, role: ood, smiles: [CCCl]}\n")
    out = tmp_path / "chloro.db"
    with pytest.raises(UnsupportedElementError, match=r"Cl.*CCCl"):
        build_dataset(load_task(task_path), load_preset("quick"), ReferenceConfig(name="emt"),
                      seed=0, out=out)
    assert not out.exists()


@pytest.mark.parametrize("kind", ["rattle", "normal_modes"])
def test_other_samplers(tmp_path, tiny_task, kind):
    preset = PresetConfig(name=kind, trajectories=TrajectoriesPerRole(train=1, val=1, id_test=1,
                                                                      ood_test=1),
                          sampler=SamplerConfig(kind=kind, frames_per_trajectory=3))
    out = tmp_path / f"{kind}.db"
    report = build_dataset(tiny_task, preset, ReferenceConfig(), seed=0, out=out, workers=1)
    assert not report.failures
    store = DatasetStore(out)
    assert store.count() == 3 * 3 * 2 + 3
    rows = list(store.rows(trajectory_id="1:train:0"))
    spread = np.std([r.positions for r in rows], axis=0).max()
    assert 0.005 < spread < 0.5  # geometries differ, by thermal amounts


def test_an_embedded_cluster_is_quiet_when_the_default_dashboard_port_is_taken():
    """A second gmd-bench command beside a running one must not print Dask's "Port 8787 is
    already in use" around its own output (issue 27): its scheduler serves HTTP on a free port."""
    import socket
    import warnings

    from gmdbench.data.generate import dask_client

    with closing(socket.socket()) as holder:
        try:
            holder.bind(("", 8787))
            holder.listen()
        except OSError:
            pass  # another process holds it already: the same condition
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with dask_client(1, None) as client:
                assert client.submit(sum, [1, 2]).result() == 3
    assert not [str(w.message) for w in caught if "already in use" in str(w.message)]
