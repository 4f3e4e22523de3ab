"""Trajectory-grouped splits: roles are given to whole trajectories, never to frames.

Each training molecule gets independent trajectories (own conformer, own seed) for train, val and
id_test; each OOD molecule gets ood_test trajectories only. Seeds are derived from the user's
seed and the trajectory's identity, so adding a molecule to a task does not change the others.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from gmdbench.chem.fragments import count_fragments
from gmdbench.config import PresetConfig
from gmdbench.tasks.spec import Molecule, TaskSpec

TRAINING_SPLITS = ("train", "val", "id_test")
SPLITS = (*TRAINING_SPLITS, "ood_test")


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from the parts' text: stable across runs, platforms and Python versions."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class TrajectoryPlan:
    """One trajectory to generate: its molecule, split, conformer and seed."""

    trajectory_id: str
    molecule_id: int
    smiles: str
    split: str
    conformer_index: int
    n_conformers: int
    conformer_seed: int
    seed: int


def plan_trajectories(task: TaskSpec, preset: PresetConfig, seed: int) -> list[TrajectoryPlan]:
    """All trajectories of a dataset, in a fixed order."""
    counts = preset.trajectories
    plans = []
    for molecule in task.molecules():
        splits = TRAINING_SPLITS if molecule.role == "train" else ("ood_test",)
        per_split = [(split, getattr(counts, split)) for split in splits]
        n_conformers = sum(n for _, n in per_split)
        conformer_seed = derive_seed(seed, "conformers", molecule.smiles) % (2**31)
        conformer_index = 0
        for split, n in per_split:
            for k in range(n):
                trajectory_id = f"{molecule.molecule_id}:{split}:{k}"
                plans.append(
                    TrajectoryPlan(
                        trajectory_id=trajectory_id,
                        molecule_id=molecule.molecule_id,
                        smiles=molecule.smiles,
                        split=split,
                        conformer_index=conformer_index,
                        n_conformers=n_conformers,
                        conformer_seed=conformer_seed,
                        seed=derive_seed(seed, "trajectory", molecule.smiles, split, k),
                    )
                )
                conformer_index += 1
    return plans


def fragment_table(task: TaskSpec) -> list[tuple[Molecule, dict[str, int]]]:
    """Each molecule with its fragment counts (the task's fragments)."""
    smarts = task.fragment_smarts()
    return [(molecule, count_fragments(molecule.smiles, smarts)) for molecule in task.molecules()]


def novel_fragments(task: TaskSpec) -> dict[str, list[str]]:
    """For each OOD molecule, what it has that no training molecule has.

    Novel are: a fragment absent from all training molecules, a count above the largest count
    seen in training (two COOH where training had one), and a pair of fragments that never
    occur together in one training molecule (OH beside NH2 when training had them apart).
    """
    table = fragment_table(task)
    train_max: Counter[str] = Counter()  # a fragment no training molecule has: 0
    train_pairs: set[tuple[str, str]] = set()
    for molecule, counts in table:
        if molecule.role == "train":
            present = sorted(name for name, n in counts.items() if n)
            train_pairs.update(combinations(present, 2))
            for name, n in counts.items():
                train_max[name] = max(train_max[name], n)
    novel = {}
    for molecule, counts in table:
        if molecule.role != "ood":
            continue
        notes = [
            f"{name} x{n} (training max {train_max[name]})"
            for name, n in counts.items()
            if n > train_max[name]
        ]
        present = sorted(name for name, n in counts.items() if n)
        notes += [
            f"{a} + {b} together (never in one training molecule)"
            for a, b in combinations(present, 2)
            if (a, b) not in train_pairs and train_max[a] and train_max[b]
        ]
        novel[molecule.smiles] = notes
    return novel


def trajectory_number(trajectory_id: str) -> int:
    """``k`` of a trajectory id ``molecule:split:k`` (its index among its molecule's split)."""
    return int(trajectory_id.rsplit(":", 1)[1])


def select_frames(rows_by_split: dict[str, list[Any]], split: str, protocol: str = "trajectory",
                  train_trajectories: int | None = None) -> list[Any]:
    """The dataset rows a run sees as ``split``.

    ``train_trajectories``: only the first N train trajectories of each molecule are train (a
    data-size series built once at its largest size, so val and the test frames are the same
    at every size). ``protocol="random-frames"`` is the GMD-26 authors' probable protocol, an
    ablation: each training molecule's train and id_test frames are pooled (the frames of the
    same trajectories' kind, at the same stride) and as many frames as its id_test trajectories
    hold are drawn at random, seeded by the molecule, for id_test; the rest are train. Train
    size and frame spacing stay those of the trajectory protocol, so only the correlation of ID
    test frames with training frames changes. val and ood_test never change.
    """
    def subsampled(rows: list[Any]) -> list[Any]:
        if train_trajectories is None:
            return rows
        return [row for row in rows if trajectory_number(row.trajectory_id) < train_trajectories]

    if protocol == "trajectory" or split not in ("train", "id_test"):
        rows = rows_by_split[split]
        return subsampled(rows) if split == "train" else rows
    if protocol != "random-frames":
        raise ValueError(f"unknown split protocol {protocol!r}")
    pooled: dict[str, list[Any]] = {}
    n_test: dict[str, int] = {}
    for row in subsampled(rows_by_split["train"]) + rows_by_split["id_test"]:
        pooled.setdefault(row.smiles, []).append(row)
    for row in rows_by_split["id_test"]:
        n_test[row.smiles] = n_test.get(row.smiles, 0) + 1
    chosen = []
    for smiles in sorted(pooled):
        rows = sorted(pooled[smiles], key=lambda r: (r.trajectory_id, r.frame))
        rng = np.random.default_rng(derive_seed("random-frames", smiles))
        test = set(rng.choice(len(rows), size=n_test.get(smiles, 0), replace=False).tolist())
        chosen += [row for i, row in enumerate(rows) if (i in test) == (split == "id_test")]
    return chosen
