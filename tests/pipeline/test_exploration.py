"""Model-driven exploration: a molecule outside the task, MD driven by the ensemble, stopped at
the trust window's upper bound; its labelled frames become the next round's training data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.io import read

from gmdbench.active.exploration import ExplorationSettings, TrustWindow
from gmdbench.config import TrainConfig
from gmdbench.data.store import DatasetStore
from gmdbench.errors import GmdError
from gmdbench.pipeline.exploration import explore_molecules
from gmdbench.reference.registry import ReferenceConfig, label_with_retries, resolve_reference
from gmdbench.runner.executor import train_run
from gmdbench.runner.runs import RunConfig

OUTSIDE = "CCCC"  # butane: the tiny task trains on methane and ethane, tests on propane
SETTINGS = ExplorationSettings(steps=40, sample_every=5, max_candidates=100)


@pytest.fixture(scope="module")
def free_run(trained_runs, tmp_path_factory):
    """The SchNet pair explores butane with a window nothing leaves: every sampled deviation."""
    _, run_dirs = trained_runs
    out = tmp_path_factory.mktemp("free")
    summary = explore_molecules(run_dirs[:2], [OUTSIDE], out, TrustWindow(low=0.0, high=1e9),
                                SETTINGS, seed=3)
    return run_dirs[:2], summary


def test_exploration_stops_where_the_deviation_first_reaches_high(free_run, tmp_path,
                                                                  tiny_dataset):
    run_dirs, free = free_run
    sampled = free["molecules"][0]["sampled"]
    assert [s["step"] for s in sampled] == list(range(0, 41, 5))
    deviations = [s["deviation"] for s in sampled]
    assert all(d > 0 for d in deviations)  # two seeds never agree exactly
    high = sorted(deviations)[len(deviations) // 2]  # reached somewhere along the run
    low = min(deviations) * 0.999
    first = next(s["step"] for s in sampled if s["deviation"] >= high)
    summary = explore_molecules(run_dirs, [OUTSIDE], tmp_path, TrustWindow(low=low, high=high),
                                SETTINGS, seed=3, base=tiny_dataset)
    molecule = summary["molecules"][0]
    assert molecule["stopped_by"] == "threshold"
    assert molecule["sampled"][-1]["step"] == first  # the same MD, stopped at its threshold
    kept = [s for s in molecule["sampled"] if low <= s["deviation"] < high]
    assert molecule["candidates"] == len(kept) > 0
    # the kept frames are labelled by the reference, not by the models
    frames = read(tmp_path / "candidates.extxyz", index=":")
    assert len(frames) == len(kept)
    energy, forces = label_with_retries(frames[0].copy(),
                                        resolve_reference(ReferenceConfig(name="gfn2-xtb")))
    assert frames[0].get_potential_energy() == pytest.approx(energy, abs=1e-6)
    np.testing.assert_allclose(frames[0].get_forces(), forces, atol=1e-6)
    assert all(f.info["deviation"] < high for f in frames)
    # handed to the next round: base + candidates in train, and a model trains on it
    data = DatasetStore(tmp_path / "data.db")
    base = DatasetStore(tiny_dataset)
    assert data.summary()["frames_per_split"]["train"] == \
        base.summary()["frames_per_split"]["train"] + len(kept)
    added = [r for r in data.rows(split="train") if r.get("source") == "exploration"]
    assert {r.smiles for r in added} == {OUTSIDE}
    run = RunConfig(task="tiny_alkanes", model="schnet",
                    model_options={"hidden_channels": 16, "num_filters": 16},
                    training=TrainConfig(epochs=1, batch_size=4), seed=0,
                    dataset_hash=data.content_hash())
    trained = train_run(run, tmp_path / "data.db", tmp_path / "next-round")
    assert (trained / "best.pt").exists()
    assert json.loads((tmp_path / "exploration.json").read_text())["next_round_data"] == \
        "data.db"


def test_a_low_bound_above_every_deviation_keeps_nothing(free_run, tmp_path):
    run_dirs, free = free_run
    top = max(s["deviation"] for s in free["molecules"][0]["sampled"])
    summary = explore_molecules(run_dirs, [OUTSIDE], tmp_path,
                                TrustWindow(low=top * 1.01, high=top * 2), SETTINGS, seed=3)
    assert summary["candidates"] == 0 and summary["molecules"][0]["stopped_by"] == "steps"
    assert (tmp_path / "candidates.extxyz").read_text() == ""


def test_exploration_refuses_elements_the_models_never_saw(trained_runs, tmp_path):
    _, run_dirs = trained_runs
    with pytest.raises(GmdError, match="unknown to the models"):
        explore_molecules(run_dirs[:2], ["CO"], tmp_path, TrustWindow(low=0.0, high=1.0),
                          SETTINGS)


def test_trust_window_must_be_ordered():
    with pytest.raises(ValueError, match="must exceed"):
        TrustWindow(low=1.0, high=0.5)
