"""The metrics of DESIGN.md section 6, as pure functions of arrays.

F: reference forces (N, 3), G: predicted forces (N, 3), E / E_hat: reference / predicted total
energies (S,), n: atoms per structure (S,), structure: structure index of each atom (N,).
"""

from __future__ import annotations

import numpy as np

EFWT_FORCE_THRESHOLD = 0.03  # eV/A, max over atoms of |G_i - F_i|
EFWT_ENERGY_THRESHOLD = 0.02  # eV, |E_hat - E|


def force_mae(predicted: np.ndarray, reference: np.ndarray) -> float:
    """Mean over atoms and Cartesian components of |G_ia - F_ia| (eV/A)."""
    return float(np.mean(np.abs(predicted - reference)))


def force_rmse(predicted: np.ndarray, reference: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - reference) ** 2)))


def force_cosine(predicted: np.ndarray, reference: np.ndarray) -> float:
    """Mean over atoms with |F_i| > 1e-10 of G_i.F_i / (|G_i| |F_i|)."""
    reference_norm = np.linalg.norm(reference, axis=1)
    predicted_norm = np.linalg.norm(predicted, axis=1)
    keep = reference_norm > 1e-10
    denominator = np.maximum(predicted_norm[keep] * reference_norm[keep], 1e-300)
    return float(np.mean(np.sum(predicted[keep] * reference[keep], axis=1) / denominator))


def force_magnitude_mae(predicted: np.ndarray, reference: np.ndarray) -> float:
    """Mean over atoms of | |G_i| - |F_i| | (eV/A)."""
    return float(np.mean(np.abs(np.linalg.norm(predicted, axis=1)
                                - np.linalg.norm(reference, axis=1))))


def energy_mae(predicted: np.ndarray, reference: np.ndarray) -> float:
    """Mean over structures of |E_hat_s - E_s| (eV, total energies)."""
    return float(np.mean(np.abs(predicted - reference)))


def energy_mae_per_atom(predicted: np.ndarray, reference: np.ndarray,
                        n_atoms: np.ndarray) -> float:
    """Mean over structures of |E_hat_s - E_s| / n_s (eV/atom)."""
    return float(np.mean(np.abs(predicted - reference) / n_atoms))


def efwt(predicted_energy: np.ndarray, reference_energy: np.ndarray,
         predicted_forces: np.ndarray, reference_forces: np.ndarray,
         structure: np.ndarray) -> float:
    """Fraction of structures with max_i |G_i - F_i| < 0.03 eV/A and |E_hat - E| < 0.02 eV."""
    per_atom = np.linalg.norm(predicted_forces - reference_forces, axis=1)
    worst = np.zeros(len(reference_energy))
    np.maximum.at(worst, structure, per_atom)
    energy_ok = np.abs(predicted_energy - reference_energy) < EFWT_ENERGY_THRESHOLD
    return float(np.mean(energy_ok & (worst < EFWT_FORCE_THRESHOLD)))


def energy_decomposition(predicted_energy: np.ndarray, reference_energy: np.ndarray,
                         molecule: np.ndarray) -> dict[str, float]:
    """The energy error split into what a model gets wrong about a molecule's composition and
    about its conformations (DESIGN §6): with e_s = E_hat_s - E_s and offset_m the mean of e_s
    over molecule m's frames, ``relative_energy_mae`` = mean_s |e_s - offset_m(s)| and
    ``offset_mae`` = mean_m |offset_m|, beside the total ``energy_mae`` = mean_s |e_s|."""
    error = np.asarray(predicted_energy, dtype=float) - np.asarray(reference_energy, dtype=float)
    labels, inverse = np.unique(np.asarray(molecule), return_inverse=True)
    offsets = np.bincount(inverse, weights=error, minlength=len(labels)) / np.bincount(
        inverse, minlength=len(labels))
    return {"energy_mae": float(np.mean(np.abs(error))),
            "relative_energy_mae": float(np.mean(np.abs(error - offsets[inverse]))),
            "offset_mae": float(np.mean(np.abs(offsets)))}


def all_metrics(predicted_energy: np.ndarray, reference_energy: np.ndarray,
                predicted_forces: np.ndarray, reference_forces: np.ndarray,
                n_atoms: np.ndarray) -> dict[str, float]:
    """Every metric, keyed by the names used in the results store and reports."""
    structure = np.repeat(np.arange(len(n_atoms)), n_atoms)
    return {
        "force_mae": force_mae(predicted_forces, reference_forces),
        "force_rmse": force_rmse(predicted_forces, reference_forces),
        "force_cosine": force_cosine(predicted_forces, reference_forces),
        "force_magnitude_mae": force_magnitude_mae(predicted_forces, reference_forces),
        "energy_mae": energy_mae(predicted_energy, reference_energy),
        "energy_mae_per_atom": energy_mae_per_atom(predicted_energy, reference_energy, n_atoms),
        "efwt": efwt(predicted_energy, reference_energy, predicted_forces, reference_forces,
                     structure),
    }
