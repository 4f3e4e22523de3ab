"""Predict a split with a potential, save predictions, compute metrics per split and molecule."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from gmdbench.data.graphs import GraphSet, evaluation_edge_budget
from gmdbench.evaluation.metrics import all_metrics, energy_decomposition
from gmdbench.files import atomic_path
from gmdbench.models.base import Potential

ALL_MOLECULES = "all"
LABEL_FIELDS = ("smiles", "trajectory_id", "frame", "n_atoms", "energy_reference",
                "forces_reference", "numbers")


@dataclass
class Predictions:
    """Per frame and per atom predictions of one split, with the frames' identities."""

    smiles: np.ndarray  # (S,) str
    trajectory_id: np.ndarray  # (S,) str
    frame: np.ndarray  # (S,) int
    n_atoms: np.ndarray  # (S,)
    energy: np.ndarray  # (S,) predicted, eV
    energy_reference: np.ndarray  # (S,)
    forces: np.ndarray  # (N, 3) predicted, eV/A
    forces_reference: np.ndarray  # (N, 3)
    numbers: np.ndarray  # (N,)

    def save(self, path: Path) -> None:
        with atomic_path(path) as temporary, open(temporary, "wb") as stream:
            np.savez_compressed(stream, **{k: getattr(self, k)
                                           for k in self.__dataclass_fields__})

    def save_compact(self, path: Path, labels_dir: Path) -> Path:
        """Predictions without the labels, forces in float32 (energies stay float64: float32
        resolves -1000 eV totals to 1e-4 eV only), beside a labels file shared by every run
        that scored the same frames (``labels_dir/labels-<hash of the frames>.npz``, written
        once): an archive of many runs stores each dataset's labels once. Returns the labels
        file. ``load`` reads both forms."""
        frames = "\x1f".join(f"{s}\x1e{t}\x1e{f}" for s, t, f in zip(
            self.smiles.tolist(), self.trajectory_id.tolist(), self.frame.tolist(), strict=True))
        labels = Path(labels_dir) / f"labels-{hashlib.sha256(frames.encode()).hexdigest()[:16]}.npz"
        if not labels.exists():
            with atomic_path(labels) as temporary, open(temporary, "wb") as stream:
                np.savez_compressed(stream, **{k: getattr(self, k) for k in LABEL_FIELDS})
        else:  # the same frame keys from another dataset (rebuilt, relabelled) must not share
            with np.load(labels, allow_pickle=False) as stored:
                differing = [k for k in LABEL_FIELDS
                             if not np.array_equal(stored[k], getattr(self, k))]
            if differing:
                raise ValueError(f"{path}: its frames' labels file {labels} holds other "
                                 f"{', '.join(differing)} for the same frames (another "
                                 "dataset): archive it beside a labels folder of its own")
        with atomic_path(path) as temporary, open(temporary, "wb") as stream:
            np.savez_compressed(
                stream, smiles=self.smiles, trajectory_id=self.trajectory_id, frame=self.frame,
                energy=self.energy, forces=self.forces.astype(np.float32),
                labels=np.array(os.path.relpath(labels, Path(path).parent)))
        return labels

    def compacted(self) -> Predictions:
        """These predictions as :meth:`save_compact` stores them and :meth:`load` reads them
        back (forces through float32), so metrics of an archive can be computed before it is
        written."""
        return replace(self, forces=self.forces.astype(np.float32).astype(np.float64))

    @staticmethod
    def is_compact(path: Path) -> bool:
        """Whether saved predictions are in compact form (labels in a shared file)."""
        with np.load(path, allow_pickle=False) as data:
            return "labels" in data

    @classmethod
    def load(cls, path: Path) -> Predictions:
        """Saved predictions, in full or compact form (labels read from their shared file)."""
        with np.load(path, allow_pickle=False) as data:
            if "labels" not in data:
                return cls(**{k: data[k] for k in cls.__dataclass_fields__})
            own = {k: data[k] for k in data if k != "labels"}
            labels_path = Path(path).parent / str(data["labels"])
        with np.load(labels_path, allow_pickle=False) as labels:
            shared = {k: labels[k] for k in LABEL_FIELDS}
        if not (np.array_equal(shared["trajectory_id"], own["trajectory_id"])
                and np.array_equal(shared["frame"], own["frame"])):
            raise ValueError(f"{path}: frames differ from its labels file {labels_path}")
        return cls(**{**shared, "energy": own["energy"].astype(np.float64),
                      "forces": own["forces"].astype(np.float64)})

    def select(self, mask: np.ndarray) -> Predictions:
        atom_mask = np.repeat(mask, self.n_atoms)
        return Predictions(self.smiles[mask], self.trajectory_id[mask], self.frame[mask],
                           self.n_atoms[mask], self.energy[mask], self.energy_reference[mask],
                           self.forces[atom_mask], self.forces_reference[atom_mask],
                           self.numbers[atom_mask])

    def metrics(self) -> dict[str, float]:
        """Every metric of DESIGN §6, the energy decomposed by molecule included."""
        decomposed = energy_decomposition(self.energy, self.energy_reference, self.smiles)
        return {**all_metrics(self.energy, self.energy_reference, self.forces,
                              self.forces_reference, self.n_atoms),
                "relative_energy_mae": decomposed["relative_energy_mae"],
                "offset_mae": decomposed["offset_mae"]}


def predict(potential: Potential, graphs: GraphSet, keys: list[dict], batch_size: int = 32,
            dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
            max_edges: int | None = None) -> Predictions:
    """Energies and forces of every frame, batched on ``device`` (default: the potential's)
    by at most ``batch_size`` frames and ``max_edges`` edges (default:
    :func:`evaluation_edge_budget`); predictions are gathered on the device and copied to the
    host once."""
    potential.eval()
    device = device or next(potential.buffers()).device
    max_edges = evaluation_edge_budget() if max_edges is None else max_edges
    energies, forces = [], []
    for _, batch in graphs.batches(batch_size, dtype, device=device, max_edges=max_edges):
        out = potential(batch)
        energies.append(out["energy"].detach())
        forces.append(out["forces"].detach())
    energy = torch.cat(energies).cpu().numpy().astype(np.float64)
    forces_all = torch.cat(forces).cpu().numpy().astype(np.float64)
    if not potential.metadata.energy_defined:  # forces-only model: no energy to score
        energy = np.full_like(energy, np.nan)
    return Predictions(
        smiles=np.array([k["smiles"] for k in keys]),
        trajectory_id=np.array([k["trajectory_id"] for k in keys]),
        frame=np.array([k["frame"] for k in keys], dtype=np.int64),
        n_atoms=graphs.n_atoms.copy(),
        energy=energy,
        energy_reference=graphs.energy.copy(),
        forces=forces_all,
        forces_reference=graphs.forces.copy(),
        numbers=graphs.numbers.copy(),
    )


def metrics_per_molecule(predictions: Predictions) -> dict[str, dict[str, float]]:
    """Metrics over the whole split (key "all") and for each molecule (canonical SMILES)."""
    result = {ALL_MOLECULES: predictions.metrics()}
    for smiles in sorted(set(predictions.smiles.tolist())):
        result[smiles] = predictions.select(predictions.smiles == smiles).metrics()
    return result
