"""Per-element reference energies E0: fitted by least squares on train, or isolated atoms.

Models learn E - sum_i E0[Z_i]. Fitted E0 absorb the composition dependence seen in training;
note that a training set in which an element's count is fixed (every mono-acid has two O) leaves
that element's E0 undetermined, and a fit then splits it arbitrarily with the others: that is one
suspected cause of the OOD energy failures in the GMD-26 table, and the reason this choice is
recorded with every run.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from gmdbench.data.graphs import GraphSet


def composition_matrix(graphs: GraphSet, elements: list[int]) -> np.ndarray:
    """(n_structures, n_elements) counts of each element."""
    column = {z: k for k, z in enumerate(elements)}
    counts = np.zeros((len(graphs), len(elements)))
    structure = np.repeat(np.arange(len(graphs)), graphs.n_atoms)
    np.add.at(counts, (structure, [column[int(z)] for z in graphs.numbers]), 1.0)
    return counts


def fit_reference_energies(graphs: GraphSet, elements: list[int]) -> dict[int, float]:
    """Least-squares E0 (minimum-norm where the composition does not determine them)."""
    counts = composition_matrix(graphs, elements)
    solution, *_ = np.linalg.lstsq(counts, graphs.energy, rcond=None)
    return {z: float(e) for z, e in zip(elements, solution, strict=True)}


def reference_energies(graphs: GraphSet, elements: list[int],
                       kind: Literal["fit", "isolated"],
                       isolated: dict[str, float] | None) -> dict[int, float]:
    if kind == "fit":
        return fit_reference_energies(graphs, elements)
    from ase.data import chemical_symbols

    if not isolated:
        raise ValueError("isolated-atom energies requested but the dataset stores none")
    return {z: float(isolated[chemical_symbols[z]]) for z in elements}


def force_scale(graphs: GraphSet) -> float:
    """RMS of the force components: the natural unit of the residual a network learns."""
    rms = float(np.sqrt(np.mean(graphs.forces**2)))
    return rms if rms > 0 else 1.0
