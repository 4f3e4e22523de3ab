import numpy as np
import pytest
import torch

from gmdbench.config import TrainConfig
from gmdbench.data.graphs import graphset_from_store
from gmdbench.data.store import DatasetStore
from gmdbench.training.reference_energies import (
    composition_matrix,
    fit_reference_energies,
)
from gmdbench.training.trainer import train
from tests_support import tiny_schnet


def _setup(tiny_dataset):
    return tiny_schnet(tiny_dataset)


CONFIG = TrainConfig(epochs=6, batch_size=4, learning_rate=2e-3, ema_decay=0.9)


def test_resumed_training_matches_uninterrupted(tiny_dataset, tmp_path):
    potential, train_set, val_set = _setup(tiny_dataset)
    straight = train(potential, train_set, val_set, CONFIG, seed=1, run_dir=tmp_path / "a")

    potential, train_set, val_set = _setup(tiny_dataset)
    halfway = CONFIG.model_copy(update={"epochs": 3})
    train(potential, train_set, val_set, halfway, seed=1, run_dir=tmp_path / "b")
    potential, train_set, val_set = _setup(tiny_dataset)  # a fresh process would start here
    resumed = train(potential, train_set, val_set, CONFIG, seed=1, run_dir=tmp_path / "b")

    assert resumed["epochs_run"] == straight["epochs_run"] == 6
    assert resumed["best_val_loss"] == pytest.approx(straight["best_val_loss"], rel=1e-5)
    a = torch.load(tmp_path / "a" / "best.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "best.pt", weights_only=True)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_checkpoint_choice_uses_val_only(tiny_dataset, tmp_path):
    """A val set whose forces are reversed gets worse exactly as training gets better: a
    choice by val picks an early epoch, a choice leaking train (or any other) loss the last."""
    from gmdbench.training.trainer import evaluate_loss

    potential, train_set, val_set = _setup(tiny_dataset)
    val_set.forces = -val_set.forces
    config = CONFIG.model_copy(update={"early_stopping_patience": None, "ema_decay": None})
    summary = train(potential, train_set, val_set, config, seed=0, run_dir=tmp_path)
    history = summary["history"]
    by_val = min(range(len(history)), key=lambda k: history[k]["val_loss"])
    by_train = min(range(len(history)), key=lambda k: history[k]["train_loss"])
    assert by_val != by_train  # the set-up separates the two choices
    assert summary["best_epoch"] == history[by_val]["epoch"]
    # and the weights kept are those of that epoch: their val loss is its val loss
    assert evaluate_loss(potential, val_set, config)["loss"] == pytest.approx(
        history[by_val]["val_loss"], rel=1e-5)


def test_fitted_reference_energies_reproduce_a_linear_model(tiny_dataset):
    store = DatasetStore(tiny_dataset)
    graphs, _ = graphset_from_store(store, "train", 4.0)
    true = {1: -10.5, 6: -48.25}
    counts = composition_matrix(graphs, graphs.elements)
    graphs.energy = counts @ np.array([true[1], true[6]])
    fitted = fit_reference_energies(graphs, graphs.elements)
    assert fitted[1] == pytest.approx(true[1]) and fitted[6] == pytest.approx(true[6])


def test_gmd26_loss_trains(tiny_dataset, tmp_path):
    """The GMD-26 authors' loss (4 x energy MAE + 100 x per-atom force-norm error) lowers."""
    potential, train_set, val_set = _setup(tiny_dataset)
    config = TrainConfig(epochs=4, batch_size=4, loss="mae_l2", energy_weight=4.0,
                         force_weight=100.0, learning_rate=2e-3)
    summary = train(potential, train_set, val_set, config, seed=0, run_dir=tmp_path)
    assert summary["history"][-1]["train_loss"] < summary["history"][0]["train_loss"]


def test_convergence_is_a_flat_val_force_mae_over_the_last_fifth():
    from gmdbench.training.trainer import converged

    def history(maes):
        return [{"epoch": k, "val_force_mae": v} for k, v in enumerate(maes)]

    flat = [0.5, 0.2, 0.1, 0.08, 0.07, 0.0695, 0.0694, 0.0693, 0.0693, 0.0692]
    assert converged(history(flat))  # last 2 epochs improve 0.3% on the best before them
    improving = [0.5, 0.3, 0.2, 0.15, 0.12, 0.10, 0.09, 0.08, 0.07, 0.06]
    assert not converged(history(improving))  # 0.06 is 14% better than 0.07
    assert not converged(history(flat[:4]))  # too short to show it
    assert not converged([{"epoch": k} for k in range(10)])  # no val force MAE recorded


def test_the_trainer_records_val_force_mae_and_convergence(tiny_dataset, tmp_path):
    potential, train_set, val_set = _setup(tiny_dataset)
    summary = train(potential, train_set, val_set, CONFIG, seed=0, run_dir=tmp_path)
    history = summary["history"]
    assert all(record["val_force_mae"] > 0 for record in history)
    from gmdbench.training.trainer import converged

    assert summary["converged"] == converged(history)
