"""Is a candidate frame a near-copy of a frame we already have? RMSD after optimal alignment.

An exact-match check (hashing rounded coordinates) passes a frame shifted by 1e-5 A, or the same
frame rotated; a pool that must be disjoint from the test set needs a distance. Here: the RMSD
between two frames of the same molecule (same atoms in the same order, as every frame built
from one SMILES has) after the rotation and translation that minimise it (Kabsch), from the
singular values of the 3x3 correlation matrix (Coutsias, Seok and Dill 2004), vectorised over
all frames of the other set. Atom permutations (two equivalent hydrogens swapped) are not
searched: MD frames of one trajectory keep their order, and a swapped copy is not a near-copy
an MLIP would memorise more easily than any other frame.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def aligned_rmsd(frames: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """RMSD (A) of ``probe`` (N, 3) to each of ``frames`` (M, N, 3) after optimal rigid
    alignment."""
    frames = np.asarray(frames, dtype=np.float64)
    probe = np.asarray(probe, dtype=np.float64)
    centred = frames - frames.mean(axis=1, keepdims=True)
    target = probe - probe.mean(axis=0)
    correlation = np.einsum("mni,nj->mij", centred, target)
    singular = np.linalg.svd(correlation, compute_uv=False)
    # a reflection is not a rigid motion: flip the smallest singular value where det < 0
    # (where det is 0 that value is 0 too, so its sign, 0, changes nothing)
    singular[:, -1] *= np.sign(np.linalg.det(correlation))
    squares = (centred ** 2).sum(axis=(1, 2)) + (target ** 2).sum()
    return np.sqrt(np.maximum(squares - 2 * singular.sum(axis=1), 0.0) / len(probe))


def near_copies(candidates: Iterable[tuple[str, np.ndarray, np.ndarray]],
                others: Iterable[tuple[str, np.ndarray, np.ndarray]],
                threshold: float) -> list[tuple[str, float]]:
    """(candidate key, its RMSD) for every candidate within ``threshold`` A of a frame of
    ``others`` with the same atoms; both are (key, atomic numbers, positions)."""
    by_atoms: dict[bytes, list[np.ndarray]] = {}
    for _, numbers, positions in others:
        by_atoms.setdefault(np.asarray(numbers, np.int64).tobytes(), []).append(
            np.asarray(positions, dtype=np.float64))
    stacked = {atoms: np.stack(frames) for atoms, frames in by_atoms.items()}
    found = []
    for key, numbers, positions in candidates:
        frames = stacked.get(np.asarray(numbers, np.int64).tobytes())
        if frames is None:
            continue
        nearest = float(aligned_rmsd(frames, positions).min())
        if nearest < threshold:
            found.append((key, nearest))
    return found
