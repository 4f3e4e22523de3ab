"""Uncertainty signals and their calibration against the actual error (pure functions on arrays).

Deep ensemble (Lakshminarayanan et al. 2017): the M seeds of one configuration, already trained
for the table, predict the same frames; their spread is the signal, their mean the prediction
whose error it should track. Per atom, sigma_a = sqrt(mean over x, y, z of the sample variance
over members) (ddof=1: M is 3 here, and the population variance would understate the spread by
a third); per frame, the mean of sigma_a over its atoms, the same averaging as the frame's force
MAE, so the two are in one unit (eV/A) and comparable.

Calibration, per force component e = F_mean - F_ref against the component's ensemble sigma:
- Spearman rank correlation of a signal with the frame's force MAE (does it *rank* failures?);
- error against signal in equal-count bins, with the count of each bin;
- ENCE (expected normalised calibration error, Levi et al. 2022): in equal-count bins of sigma,
  mean over bins of |RMV - RMSE| / RMV, where RMV = sqrt(mean sigma^2) and RMSE the bin's root
  mean square error; 0 for a calibrated Gaussian, > 0 over- or under-confident;
- coverage: the fraction of components with |e| <= sigma and <= 2 sigma (0.683 and 0.954 for
  a calibrated Gaussian).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def ensemble_forces(member_forces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sigma) per atom and component over members: arrays of shape (N, 3)."""
    if len(member_forces) < 2:
        raise ValueError(f"an ensemble needs two or more members, got {len(member_forces)}")
    # shifted by the first member: identical members give exactly 0 and their own forces (a
    # plain mean of M equal floats can differ from them in the last bit)
    shift = np.asarray(member_forces[0], dtype=np.float64)
    deviations = np.stack(member_forces).astype(np.float64) - shift
    count = len(member_forces)
    variance = (np.sum(deviations**2, axis=0) - np.sum(deviations, axis=0) ** 2 / count) \
        / (count - 1)
    return shift + deviations.mean(axis=0), np.sqrt(np.maximum(variance, 0.0))


def per_frame(values: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Mean of a per-atom quantity (scalars or descriptor rows) over each frame's atoms."""
    starts = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    sums = np.add.reduceat(np.asarray(values, dtype=np.float64), starts, axis=0)
    counts = np.asarray(n_atoms, dtype=np.float64)
    return sums / (counts if sums.ndim == 1 else counts[:, None])


def atom_sigma(component_sigma: np.ndarray) -> np.ndarray:
    """sigma_a = sqrt(mean over components of sigma^2)."""
    return np.sqrt(np.mean(component_sigma**2, axis=1))


def spearman(signal: np.ndarray, error: np.ndarray) -> float | None:
    """Spearman rank correlation; None where it is undefined (a constant signal or error)."""
    if len(signal) < 3 or np.ptp(signal) == 0 or np.ptp(error) == 0:
        return None
    return float(spearmanr(signal, error).statistic)


def binned_error(signal: np.ndarray, error: np.ndarray, bins: int = 8) -> list[dict]:
    """Mean error in equal-count bins of the signal: [{low, high, signal, error, count}]."""
    order = np.argsort(signal, kind="stable")
    result = []
    # min(bins, frames) sections: numpy's array_split then never makes an empty one
    for chunk in np.array_split(order, min(bins, len(order))):
        result.append({"low": float(signal[chunk].min()), "high": float(signal[chunk].max()),
                       "signal": float(signal[chunk].mean()), "error": float(error[chunk].mean()),
                       "count": int(chunk.size)})
    return result


def ence(sigma: np.ndarray, error: np.ndarray, bins: int = 10) -> float | None:
    """Expected normalised calibration error of Gaussian sigmas against signed errors."""
    sigma, error = np.ravel(sigma), np.ravel(error)
    order = np.argsort(sigma, kind="stable")
    terms = []
    for chunk in np.array_split(order, min(bins, len(order))):
        rmv = float(np.sqrt(np.mean(sigma[chunk] ** 2)))
        if rmv == 0.0:  # all sigmas of the bin zero: no scale to normalise by
            continue
        terms.append(abs(rmv - float(np.sqrt(np.mean(error[chunk] ** 2)))) / rmv)
    return float(np.mean(terms)) if terms else None


def coverage(sigma: np.ndarray, error: np.ndarray) -> dict[str, float]:
    """Fractions of errors inside one and two predicted sigmas."""
    sigma, error = np.abs(np.ravel(sigma)), np.abs(np.ravel(error))
    return {"within_1_sigma": float(np.mean(error <= sigma)),
            "within_2_sigma": float(np.mean(error <= 2 * sigma)),
            "gaussian_1_sigma": 0.6827, "gaussian_2_sigma": 0.9545}


def signal_calibration(signal: np.ndarray, error: np.ndarray, bins: int = 8) -> dict:
    """Spearman and the binned curve of one per-frame signal against per-frame error."""
    return {"spearman": spearman(signal, error), "binned": binned_error(signal, error, bins),
            "frames": len(signal)}


def per_frame_max(values: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Max of a per-atom scalar over each frame's atoms (the worst atom, as DP-GEN and FLARE
    aggregate: one bad atom makes a bad frame however many good ones surround it)."""
    starts = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    return np.maximum.reduceat(np.asarray(values, dtype=np.float64), starts)


def atom_force_deviation(component_sigma: np.ndarray) -> np.ndarray:
    """Per atom, the norm of the force spread vector, sqrt(sum over x, y, z of sigma^2): DeePMD's
    model deviation epsilon_F,i (with the sample variance, ddof=1, where DeePMD divides by M)."""
    return np.sqrt(np.sum(component_sigma**2, axis=1))


def relative_force_deviation(component_sigma: np.ndarray, mean_forces: np.ndarray,
                             level: float) -> np.ndarray:
    """epsilon_F,i / (|F_i| + level), DeePMD's relative model deviation: a large force on an atom
    excuses a proportionally larger spread. ``level`` (eV/A) keeps near-zero forces finite."""
    return atom_force_deviation(component_sigma) / (np.linalg.norm(mean_forces, axis=1) + level)


def within_group_spearman(signal: np.ndarray, error: np.ndarray, groups: np.ndarray,
                          min_frames: int = 5) -> dict:
    """Spearman of signal and error inside each group (molecule): the median over groups, its
    quartiles and how many groups had a defined rho (``min_frames`` or more frames, neither
    array constant). Pooled Spearman mixes this with how molecules differ from each other."""
    rhos = {}
    for group in np.unique(groups):
        inside = groups == group
        if inside.sum() >= min_frames:
            rho = spearman(signal[inside], error[inside])
            if rho is not None:
                rhos[str(group)] = rho
    values = np.array(list(rhos.values()))
    return {"median": float(np.median(values)) if values.size else None,
            "quartiles": [float(q) for q in np.percentile(values, [25, 75])]
            if values.size else None,
            "groups": len(rhos), "of_groups": int(np.unique(groups).size), "per_group": rhos}


def group_mean(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each frame's value replaced by its group's mean: the part of a signal that only says
    which molecule a frame belongs to."""
    _, inverse = np.unique(groups, return_inverse=True)
    means = np.bincount(inverse, weights=values) / np.bincount(inverse)
    return means[inverse]
