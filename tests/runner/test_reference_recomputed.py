"""The committed reference numbers, recomputed from the committed predictions and logs alone.

Issue 13 is checked by recomputing metrics independently of the code that wrote them, so these
tests use only numpy and the csv/json files of each archived run: no gmdbench.evaluation, no
model. A metric that drifted from DESIGN.md section 6, a per-molecule table that mixed frames,
or a convergence mark that does not follow the training log fails here.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.archive  # checks of committed numbers, not of the code

ARCHIVE = Path(__file__).resolve().parents[2] / "reference"
# the reference table's runs, and the why-ratios study's (issue 25)
RUN_DIRS = sorted(path for folder in (ARCHIVE / "runs", ARCHIVE / "why-ratios" / "runs")
                  for path in folder.glob("*") if path.is_dir() and not path.name.startswith("."))


def _load_predictions(path: Path) -> dict[str, np.ndarray]:
    """An archived predictions file as arrays; a compact one (no labels, float32 forces) is
    joined with the labels file it names, frame by frame."""
    with np.load(path) as predictions:
        arrays = {name: predictions[name] for name in predictions.files}
    if "labels" in arrays:
        with np.load(path.parent / str(arrays.pop("labels"))) as labels:
            shared = {name: labels[name] for name in labels.files}
        assert np.array_equal(shared["trajectory_id"], arrays["trajectory_id"])
        assert np.array_equal(shared["frame"], arrays["frame"])
        arrays = {**shared, "energy": arrays["energy"],
                  "forces": arrays["forces"].astype(np.float64)}
    return arrays


def _metrics_from_predictions(energy: np.ndarray, energy_ref: np.ndarray, forces: np.ndarray,
                              forces_ref: np.ndarray, n_atoms: np.ndarray,
                              smiles: np.ndarray) -> dict[str, float]:
    """DESIGN.md section 6, written out again: per component, per atom, per structure, and the
    energy error split into per-molecule offsets and what is left."""
    difference = forces - forces_ref
    norm = np.sqrt((forces ** 2).sum(axis=1))
    norm_ref = np.sqrt((forces_ref ** 2).sum(axis=1))
    nonzero = norm_ref > 1e-10
    cosine = (forces * forces_ref).sum(axis=1)[nonzero] / (norm[nonzero] * norm_ref[nonzero])
    starts = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    worst_atom = np.maximum.reduceat(np.sqrt((difference ** 2).sum(axis=1)), starts)
    energy_error = np.abs(energy - energy_ref)
    signed = energy - energy_ref
    offsets = {m: signed[smiles == m].mean() for m in np.unique(smiles)}
    offset_of_frame = np.array([offsets[m] for m in smiles])
    return {
        "relative_energy_mae": float(np.abs(signed - offset_of_frame).mean()),
        "offset_mae": float(np.mean(np.abs(list(offsets.values())))),
        "force_mae": float(np.abs(difference).mean()),
        "force_rmse": float(np.sqrt((difference ** 2).mean())),
        "force_cosine": float(cosine.mean()),
        "force_magnitude_mae": float(np.abs(norm - norm_ref).mean()),
        "energy_mae": float(energy_error.mean()),
        "energy_mae_per_atom": float((energy_error / n_atoms).mean()),
        "efwt": float(((worst_atom < 0.03) & (energy_error < 0.02)).mean()),
    }


@pytest.mark.parametrize("run_dir", RUN_DIRS, ids=[path.name for path in RUN_DIRS])
@pytest.mark.parametrize("split", ["id_test", "ood_test"])
def test_metrics_recomputed_from_the_committed_predictions(run_dir: Path, split: str):
    stored = json.loads((run_dir / "metrics.json").read_text())[split]
    arrays = _load_predictions(run_dir / f"predictions_{split}.npz")
    n_atoms = arrays["n_atoms"]
    assert len(arrays["forces"]) == n_atoms.sum() == len(arrays["forces_reference"])
    atom_smiles = np.repeat(arrays["smiles"], n_atoms)
    groups = {"all": (np.ones(len(n_atoms), bool), np.ones(len(atom_smiles), bool))}
    groups |= {str(smiles): (arrays["smiles"] == smiles, atom_smiles == smiles)
               for smiles in np.unique(arrays["smiles"])}
    assert set(stored) == set(groups), f"{run_dir.name} {split}: molecules differ"
    for name, (frames, atoms) in groups.items():
        recomputed = _metrics_from_predictions(
            arrays["energy"][frames], arrays["energy_reference"][frames],
            arrays["forces"][atoms], arrays["forces_reference"][atoms], n_atoms[frames],
            arrays["smiles"][frames])
        for metric, value in recomputed.items():
            if metric not in stored[name]:  # defined after the run was archived
                assert metric in ("relative_energy_mae", "offset_mae"), metric
                continue
            assert stored[name][metric] == pytest.approx(value, rel=1e-6, abs=1e-12), \
                f"{run_dir.name} {split} {name} {metric}"


@pytest.mark.parametrize("run_dir", RUN_DIRS, ids=[path.name for path in RUN_DIRS])
def test_convergence_mark_follows_the_committed_training_log(run_dir: Path):
    """Flat: the best val force MAE over the last fifth of the epochs improves on the best
    before it by less than 2% (issue 13's definition), read from training_log.csv."""
    record = json.loads((run_dir / "record.json").read_text())
    with open(run_dir / "training_log.csv", newline="") as log:
        rows = list(csv.DictReader(log))
    maes = [float(row["val_force_mae"]) for row in rows]
    training = record["training"]
    if training["epochs_run"] == 0:  # zero-shot: nothing trained, nothing to converge
        assert maes == [] and not training.get("converged")  # no mark, or false
        return
    assert len(maes) == training["epochs_run"]
    last = math.ceil(0.2 * len(maes))
    before, after = min(maes[:-last]), min(maes[-last:])
    flat = (before - after) / before < 0.02
    assert training["converged"] == flat, run_dir.name
    if "status" in training:  # recorded since issue 25: diverged, converged or capped
        losses = [float(row["train_loss"]) for row in rows]
        diverged = maes[-1] > 3 * min(maes) or any(
            loss > 100 * min(losses[:i]) for i, loss in enumerate(losses) if i)
        expected = "diverged" if diverged else "converged" if flat else "capped"
        assert training["status"] == expected, run_dir.name
    # the kept weights are the epoch of lowest val loss (what early stopping watches)
    assert training["best_epoch"] == int(np.argmin([float(row["val_loss"]) for row in rows]))
