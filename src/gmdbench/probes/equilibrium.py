"""Equilibrium probe: energy and force errors of a model on reference frames (e.g. held-out
DFT MD frames), with the same metric definitions as the GMD-26 table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from gmdbench.evaluation.metrics import all_metrics


def reference_labels(frames: Sequence[Atoms]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies and forces stored with the frames (extxyz: ``energy`` and ``forces``)."""
    energies, forces = [], []
    for index, atoms in enumerate(frames):
        if atoms.calc is None or "energy" not in atoms.calc.results \
                or "forces" not in atoms.calc.results:
            raise ValueError(f"reference frame {index} has no stored energy and forces")
        energies.append(float(atoms.calc.results["energy"]))
        forces.append(np.asarray(atoms.calc.results["forces"], dtype=float))
    return np.array(energies), forces


def equilibrium_errors(frames: Sequence[Atoms], calculator: Calculator,
                       conditions: Sequence[str] | None = None) -> dict:
    """The metrics over all frames; with ``conditions`` (one label per frame: its test file,
    a temperature), also per condition under ``per_condition``, since a pooled error hides
    the condition a model fails on."""
    reference_energy, reference_forces = reference_labels(frames)
    energies, forces = [], []
    for frame in frames:
        atoms = frame.copy()
        atoms.calc = calculator
        energies.append(float(atoms.get_potential_energy()))
        forces.append(np.asarray(atoms.get_forces()))
    n_atoms = np.array([len(frame) for frame in frames])
    energies = np.array(energies)
    result: dict = all_metrics(energies, reference_energy, np.concatenate(forces),
                               np.concatenate(reference_forces), n_atoms)
    if conditions is not None:
        labels = np.asarray(conditions)
        result["per_condition"] = {}
        for condition in dict.fromkeys(conditions):  # first-seen order
            chosen = np.flatnonzero(labels == condition)
            result["per_condition"][condition] = {
                "frames": int(chosen.size),
                **all_metrics(energies[chosen], reference_energy[chosen],
                              np.concatenate([forces[i] for i in chosen]),
                              np.concatenate([reference_forces[i] for i in chosen]),
                              n_atoms[chosen])}
    return result
