"""Is a user's dataset the reference's, although its content hash differs?

The exact content hash (every label's bytes) stays the cache key. But another CPU, BLAS or
compiler can change the last bits of a GFN2-xTB force, and then the hash, so the reference rows
would vanish from that user's report for no reason a reader could see. Two datasets are
therefore also *equivalent* when both hold:

- the same definition hash (task, preset, reference method and its version, data seed;
  ``data/content_hash.py``), the user's read from their dataset file and the reference's from the
  archive's ``datasets/definitions.json``;
- labels within tolerance on the test frames both sides predicted (the same frame keys; every
  energy within ``ENERGY_TOLERANCE`` eV and every force component within ``FORCE_TOLERANCE``
  eV/A), read from the two runs' saved predictions: no dataset of the reference is needed.

A genuinely different dataset (another seed, preset or method) differs in its definition or by
far more than the tolerance, and is not matched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gmdbench.data.store import DatasetStore
from gmdbench.errors import GmdError
from gmdbench.evaluation.evaluate import Predictions
from gmdbench.runner.archive import (
    archived_records,
    dataset_definitions,
    resolve_dataset_path,
)
from gmdbench.runner.results import ResultsStore

ENERGY_TOLERANCE = 1e-6  # eV
FORCE_TOLERANCE = 1e-6  # eV/A
SPLITS = ("id_test", "ood_test")


@dataclass(frozen=True)
class DatasetMatch:
    """The reference dataset a user's dataset was matched to, and by what check."""

    reference_hash: str
    frames: int  # test frames whose labels were compared
    largest_energy_difference: float
    largest_force_difference: float

    def describe(self) -> str:
        return (f"same definition (task, preset, reference method and version, seed) and "
                f"labels of {self.frames} test frames within {ENERGY_TOLERANCE:g} eV / "
                f"{FORCE_TOLERANCE:g} eV/A (largest differences "
                f"{self.largest_energy_difference:.1e} eV, "
                f"{self.largest_force_difference:.1e} eV/A); the exact content hashes "
                "differ, as another CPU or BLAS can make them")


def _labels(run_dir: Path) -> dict[tuple[str, str, int], tuple[float, np.ndarray]]:
    """(split, trajectory, frame) -> (reference energy, reference forces) of a run's saved
    test predictions."""
    labels = {}
    for split in SPLITS:
        path = Path(run_dir) / f"predictions_{split}.npz"
        if not path.exists():
            continue
        predictions = Predictions.load(path)
        ends = np.cumsum(predictions.n_atoms)
        for i, (trajectory, frame) in enumerate(zip(predictions.trajectory_id,
                                                    predictions.frame, strict=True)):
            forces = predictions.forces_reference[ends[i] - predictions.n_atoms[i]:ends[i]]
            labels[(split, str(trajectory), int(frame))] = (
                float(predictions.energy_reference[i]), forces)
    return labels


def _dataset_labels(store: DatasetStore) -> dict[tuple[str, str, int], tuple[float, np.ndarray]]:
    """(split, trajectory, frame) -> (energy, forces) of a dataset's test frames, keyed as
    :func:`_labels` keys a run's predictions."""
    return {(split, str(row.trajectory_id), int(row.frame)): (float(row.energy),
                                                              np.asarray(row.forces))
            for split in SPLITS for row in store.rows(split=split)}


def compare_labels(mine: Path, theirs: Path) -> tuple[int, float, float] | None:
    """(frames, largest energy difference, largest force difference) between two runs' test
    labels; None when they did not predict the same frames."""
    return _compare(_labels(mine), _labels(theirs))


def _within_tolerance(compared: tuple[int, float, float]) -> bool:
    return compared[1] <= ENERGY_TOLERANCE and compared[2] <= FORCE_TOLERANCE


def _compare(ours: dict[tuple[str, str, int], tuple[float, np.ndarray]],
             reference: dict[tuple[str, str, int], tuple[float, np.ndarray]]
             ) -> tuple[int, float, float] | None:
    if not ours or ours.keys() != reference.keys():
        return None
    energy = force = 0.0
    for key, (our_energy, our_forces) in ours.items():
        their_energy, their_forces = reference[key]
        if our_forces.shape != their_forces.shape:
            return None
        energy = max(energy, abs(our_energy - their_energy))
        force = max(force, float(np.max(np.abs(our_forces - their_forces), initial=0.0)))
    return len(ours), energy, force


def equivalent_datasets(results: ResultsStore, reference: ResultsStore, archive: Path
                        ) -> dict[str, DatasetMatch]:
    """User dataset hash -> the reference dataset it is equivalent to (see the module
    docstring), for the user's datasets whose exact hash the reference does not have."""
    definitions = dataset_definitions(archive)
    reference_runs = reference.runs()
    known = {run["dataset_hash"] for run in reference_runs}
    matches: dict[str, DatasetMatch] = {}
    for run in results.runs():
        dataset_hash = run["dataset_hash"]
        if dataset_hash in known or dataset_hash in matches:
            continue
        try:
            saved = json.loads((Path(run["run_dir"]) / "config.json").read_text())
            path = resolve_dataset_path(Path(run["run_dir"]), saved["dataset_path"])
            definition = DatasetStore(path, write=False).definition_hash() \
                if path.exists() else None
        except (GmdError, OSError, KeyError, ValueError):  # moved or unreadable: exact only
            continue
        if definition is None:
            continue
        for theirs in reference_runs:
            if theirs["task"] != run["task"] or \
                    definitions.get(theirs["dataset_hash"]) != definition:
                continue
            compared = compare_labels(Path(run["run_dir"]), Path(theirs["run_dir"]))
            if compared is not None and _within_tolerance(compared):
                matches[dataset_hash] = DatasetMatch(theirs["dataset_hash"], *compared)
                break
    return matches


def archived_equivalent(store: DatasetStore, task: str, archive: Path) -> DatasetMatch | None:
    """The archived dataset of ``task`` that a dataset built here is an equivalent rebuild of
    (the module docstring's two conditions, the labels compared with an archived run's test
    predictions), or None. What lets a study archived run by run continue on a machine whose
    CPU gives its labels other last bits."""
    definition = store.definition_hash()
    if definition is None:
        return None
    definitions = dataset_definitions(archive)
    ours: dict[tuple[str, str, int], tuple[float, np.ndarray]] | None = None
    for folder, record in archived_records(archive):
        if record["task"] != task or definitions.get(record["dataset_hash"]) != definition:
            continue
        ours = _dataset_labels(store) if ours is None else ours
        compared = _compare(ours, _labels(folder))
        if compared is not None and _within_tolerance(compared):
            return DatasetMatch(record["dataset_hash"], *compared)
    return None
