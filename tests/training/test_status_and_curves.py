"""Issue 25: a run's training status, the cosine schedule, and learning curves that never steer
training."""

import json

import numpy as np
import pytest
import torch

from gmdbench.config import TrainConfig
from gmdbench.data.graphs import graphset_from_store
from gmdbench.data.store import DatasetStore
from gmdbench.runner.executor import observe_curve, train_run
from gmdbench.runner.runs import RunConfig
from gmdbench.training.trainer import train, training_status
from tests_support import tiny_schnet


def _history(maes, losses=None):
    losses = losses or [1.0] * len(maes)
    return [{"epoch": i, "val_force_mae": m, "train_loss": loss}
            for i, (m, loss) in enumerate(zip(maes, losses, strict=True))]


def test_status_tells_converged_capped_and_diverged_apart():
    flat = [1.0, 0.5, 0.3, 0.2, 0.15, 0.1, 0.1, 0.1, 0.1, 0.1]
    improving = [1.0, 0.8, 0.6, 0.5, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15]
    assert training_status(_history(flat)) == "converged"
    assert training_status(_history(improving)) == "capped"
    # the reference SchNet seeds: flat at its best, then a jump far above it at the end
    jumped = [*flat[:-1], 0.62]
    assert training_status(_history(jumped)) == "diverged"
    # exactly 3x the best is not yet diverged; just above is
    assert training_status(_history([*flat[:-1], 0.3])) != "diverged"
    assert training_status(_history([*flat[:-1], 0.3001])) == "diverged"
    # a train-loss spike (3.5e8 after ~1) is divergence even where val recovered
    spike = [1.0, 0.5, 0.4, 3.5e8, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2]
    assert training_status(_history(flat, spike)) == "diverged"
    assert training_status(_history(flat, [1.0, 0.5, 0.4, 40.0, *[0.3] * 6])) == "converged"
    assert training_status(_history(flat[:4])) == "capped"  # too short to show flatness


def _setup(tiny_dataset):
    return tiny_schnet(tiny_dataset)


def test_cosine_schedule_decays_to_its_floor_within_the_cap(tiny_dataset, tmp_path):
    potential, train_set, val_set = _setup(tiny_dataset)
    config = TrainConfig(epochs=5, batch_size=4, learning_rate=1e-2, schedule="cosine",
                         min_learning_rate=1e-4, early_stopping_patience=None)
    summary = train(potential, train_set, val_set, config, seed=0, run_dir=tmp_path)
    rates = [record["learning_rate"] for record in summary["history"]]
    # the rate after epoch e is floor + (lr - floor)(1 + cos(pi (e + 1) / E)) / 2
    expected = [1e-4 + (1e-2 - 1e-4) * (1 + np.cos(np.pi * (e + 1) / 5)) / 2 for e in range(5)]
    assert rates == pytest.approx(expected, rel=1e-9)


def test_learning_curve_frames_change_nothing_else_in_the_run(tiny_dataset, tmp_path):
    """The curve is analysis only: scoring other frames (here: OOD frames with reversed forces)
    changes the curve and leaves history, best epoch and weights bit-identical."""
    store = DatasetStore(tiny_dataset)
    config = TrainConfig(epochs=4, batch_size=4, learning_rate=2e-3, ema_decay=0.9)
    summaries, weights = [], []
    for label, sign in (("a", 1.0), ("b", -1.0)):
        ood, keys = graphset_from_store(store, "ood_test", 4.0)
        ood.forces = sign * ood.forces
        sets = {"ood_test": (ood, keys)}
        potential, train_set, val_set = _setup(tiny_dataset)
        summaries.append(train(potential, train_set, val_set, config, seed=2,
                               run_dir=tmp_path / label, observe_every=2,
                               observe=lambda model, sets=sets: observe_curve(
                                   model, sets, torch.float32)))
        weights.append(torch.load(tmp_path / label / "best.pt", weights_only=True))
    a, b = summaries
    assert [p["epoch"] for p in a["learning_curve"]] == [0, 2, 3]
    assert a["learning_curve"] != b["learning_curve"]
    assert a["history"] == b["history"] and a["best_epoch"] == b["best_epoch"]
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key])


def test_a_run_records_its_curve_and_status(tiny_dataset, tmp_path):
    store = DatasetStore(tiny_dataset)
    run = RunConfig(task="tiny_alkanes", model="schnet",
                    model_options={"hidden_channels": 16, "num_filters": 16, "cutoff": 4.0},
                    training=TrainConfig(epochs=3, batch_size=4), seed=0,
                    dataset_hash=store.content_hash())
    run_dir = train_run(run, tiny_dataset, tmp_path)
    summary = json.loads((run_dir / "training.json").read_text())
    assert summary["status"] in ("converged", "capped", "diverged")
    assert [p["epoch"] for p in summary["learning_curve"]] == [0, 1, 2]
    n_ood = sum(1 for _ in store.rows(split="ood_test"))
    assert summary["learning_curve_frames"]["ood_test"] == min(200, n_ood)
    point = summary["learning_curve"][-1]
    assert point["ood_test_force_mae"] > 0 and point["id_test_relative_energy_mae"] <= \
        point["id_test_energy_mae"] + 1e-12
