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

ARCHIVE_RUNS = Path(__file__).resolve().parents[2] / "reference" / "runs"
RUN_DIRS = sorted(path for path in ARCHIVE_RUNS.glob("*") if path.is_dir()
                  and not path.name.startswith("."))


def _metrics_from_predictions(energy: np.ndarray, energy_ref: np.ndarray, forces: np.ndarray,
                              forces_ref: np.ndarray, n_atoms: np.ndarray) -> dict[str, float]:
    """DESIGN.md section 6, written out again: per component, per atom, per structure."""
    difference = forces - forces_ref
    norm = np.sqrt((forces ** 2).sum(axis=1))
    norm_ref = np.sqrt((forces_ref ** 2).sum(axis=1))
    nonzero = norm_ref > 1e-10
    cosine = (forces * forces_ref).sum(axis=1)[nonzero] / (norm[nonzero] * norm_ref[nonzero])
    starts = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    worst_atom = np.maximum.reduceat(np.sqrt((difference ** 2).sum(axis=1)), starts)
    energy_error = np.abs(energy - energy_ref)
    return {
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
    with np.load(run_dir / f"predictions_{split}.npz") as predictions:
        arrays = {name: predictions[name] for name in predictions.files}
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
            arrays["forces"][atoms], arrays["forces_reference"][atoms], n_atoms[frames])
        for metric, value in recomputed.items():
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
    assert training["converged"] == ((before - after) / before < 0.02), run_dir.name
    # the kept weights are the epoch of lowest val loss (what early stopping watches)
    assert training["best_epoch"] == int(np.argmin([float(row["val_loss"]) for row in rows]))
