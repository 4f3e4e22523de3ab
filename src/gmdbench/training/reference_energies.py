"""Per-element reference energies E0: the reference method's isolated atoms, or a fit on train.

Models learn E - sum_i E0[Z_i]. The default is the isolated-atom energies of the reference
method, stored with every dataset: they are defined for any composition. A least-squares fit on
the train split (``fit``) absorbs the composition dependence seen in training, but a training
set in which element counts are tied (every mono-acid of fragment_duplication has two O and
H = 2C) leaves the fit rank-deficient: the minimum-norm solution then splits the undetermined
part arbitrarily between elements, and a test molecule of another composition (a di-acid)
inherits an energy error of tens of eV before any network is involved. Such a fit is flagged
(:func:`fit_rank`), logged and shown in reports.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from gmdbench.data.graphs import GraphSet
from gmdbench.errors import GmdError

log = logging.getLogger(__name__)
ReferenceEnergyKind = Literal["fit", "isolated"]
PretrainedOffsetKind = Literal["auto", "anchored", "isolated", "fit"]


def composition_matrix(graphs: GraphSet, elements: list[int]) -> np.ndarray:
    """(n_structures, n_elements) counts of each element."""
    column = {z: k for k, z in enumerate(elements)}
    counts = np.zeros((len(graphs), len(elements)))
    structure = np.repeat(np.arange(len(graphs)), graphs.n_atoms)
    np.add.at(counts, (structure, [column[int(z)] for z in graphs.numbers]), 1.0)
    return counts


def fit_rank(graphs: GraphSet, elements: list[int]) -> int:
    """Rank of the train compositions: below ``len(elements)`` a fit of E0 is not determined."""
    return int(np.linalg.matrix_rank(composition_matrix(graphs, elements)))


def warn_if_rank_deficient(graphs: GraphSet, elements: list[int], what: str) -> bool:
    """Log (and return) that a per-element fit on ``graphs`` is not determined: ``what`` names
    the fitted quantity (E0 of a model trained here, or offsets on a pretrained model)."""
    rank = fit_rank(graphs, elements)
    if rank < len(elements):
        log.warning("reference energies: the train compositions have rank %d for %d elements, "
                    "so the %s are not determined (minimum-norm solution); energies of other "
                    "compositions carry that error", rank, len(elements), what)
    return rank < len(elements)


def fit_reference_energies(graphs: GraphSet, elements: list[int]) -> dict[int, float]:
    """Least-squares E0 (minimum-norm where the composition does not determine them)."""
    counts = composition_matrix(graphs, elements)
    solution, *_ = np.linalg.lstsq(counts, graphs.energy, rcond=None)
    return {z: float(e) for z, e in zip(elements, solution, strict=True)}


def reference_energies(graphs: GraphSet, elements: list[int], kind: ReferenceEnergyKind,
                       isolated: dict[str, float] | None) -> dict[int, float]:
    """E0 per element of ``kind``; a rank-deficient fit is logged as such."""
    if kind == "fit":
        warn_if_rank_deficient(graphs, elements, "fitted E0")
        return fit_reference_energies(graphs, elements)
    from ase.data import chemical_symbols

    missing = [chemical_symbols[z] for z in elements
               if not isolated or chemical_symbols[z] not in isolated]
    if missing:
        raise GmdError(f"isolated-atom energies requested but the dataset stores none for "
                       f"{', '.join(missing)}; use reference_energies: fit")
    return {z: float(isolated[chemical_symbols[z]]) for z in elements}


def isolated_energies_cover(elements: list[int], isolated: dict[str, float] | None) -> bool:
    """Whether the dataset stores the reference method's isolated-atom energy of every
    element."""
    from ase.data import chemical_symbols

    return bool(isolated) and all(chemical_symbols[z] in isolated for z in elements)


def resolve_offset_kind(kind: PretrainedOffsetKind, elements: list[int],
                        isolated: dict[str, float] | None) -> str:
    """The offsets a pretrained model gets: ``auto`` is ``anchored`` where the dataset stores
    the reference's isolated atoms, else ``fit`` (stored DFT frames with pseudopotential
    references have none); an explicit anchored or isolated without them is refused."""
    covered = isolated_energies_cover(elements, isolated)
    if kind == "auto":
        return "anchored" if covered else "fit"
    if kind in ("anchored", "isolated") and not covered:
        raise GmdError(f"pretrained_offsets: {kind} needs the reference method's isolated-atom "
                       "energies, which this dataset does not store; use pretrained_offsets: "
                       "fit")
    return kind


def anchored_offsets(counts: np.ndarray, residual: np.ndarray, anchor: np.ndarray
                     ) -> np.ndarray:
    """The least-squares offsets closest to ``anchor``: anchor + pinv(A)(r - A anchor).

    Where the train compositions determine the offsets this is the ordinary fit (same
    residuals); along the directions they leave free (tied element counts) it keeps the
    anchor, the difference of the two sides' isolated atoms, instead of the minimum-norm
    fit's arbitrary zero, so a test composition outside the train span inherits a physical
    offset, not an artefact of the solver."""
    correction, *_ = np.linalg.lstsq(counts, residual - counts @ anchor, rcond=None)
    return anchor + correction


def force_scale(graphs: GraphSet) -> float:
    """RMS of the force components: the natural unit of the residual a network learns."""
    rms = float(np.sqrt(np.mean(graphs.forces**2)))
    return rms if rms > 0 else 1.0
