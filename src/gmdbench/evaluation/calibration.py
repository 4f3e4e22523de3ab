"""Calibration of an ensemble's force sigmas against what a calibrated M-member ensemble would
score, and recalibration fitted on held-out frames (pure functions on arrays).

Why the yardsticks depend on M: with M members, sigma is a *sample* standard deviation (M - 1
degrees of freedom) and the error is that of the members' mean. If the members and the truth
were independent draws from one Gaussian N(mu, s^2) (a perfectly calibrated ensemble), then
e = mean - truth ~ N(0, s^2 (1 + 1/M)) and (M - 1) sigma^2 / s^2 ~ chi^2_{M-1}, so
e / (sigma sqrt(1 + 1/M)) follows Student's t with M - 1 degrees of freedom. The fraction of
errors within k sigma is then P(|T_{M-1}| <= k / sqrt(1 + 1/M)): 0.52 and 0.78 at k = 1 and 2
for M = 3, not the Gaussian 0.68 and 0.95. The Student-t interval that *does* cover a fraction p
is sigma sqrt(1 + 1/M) t_{M-1}((1 + p) / 2).

ENCE has no closed form under that model (it depends on the spread of the sigmas and on the
binning), so its calibrated value is simulated: the observed sigmas are taken as the true
scales s, M members and a truth are drawn around each, and the same ENCE is computed
(seeded).

Recalibration is fitted on a calibration split and applied elsewhere (never fitted where it is
scored): a variance scale a (sigma -> a sigma; a^2 = mean(e^2 / sigma^2) maximises the Gaussian
likelihood) and split-conformal intervals (the ceil((n + 1) p)-th smallest |e| / sigma of the
calibration split, Vovk et al.; coverage >= p on exchangeable frames, which OOD frames are not:
that is what the OOD column measures).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm, t

from gmdbench.evaluation.uncertainty import ence

LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def expected_coverage(members: int, k: float) -> float:
    """Fraction of errors within k sigma for a calibrated ``members``-member ensemble."""
    if members < 2:
        raise ValueError(f"an ensemble needs two or more members, got {members}")
    return float(2 * t.cdf(k / math.sqrt(1 + 1 / members), members - 1) - 1)


def student_t_factor(members: int, level: float) -> float:
    """k such that |e| <= k sigma holds with probability ``level`` for a calibrated ensemble."""
    return float(math.sqrt(1 + 1 / members) * t.ppf((1 + level) / 2, members - 1))


def simulated_calibrated_ence(sigma: np.ndarray, members: int, bins: int = 10,
                              seed: int = 0) -> float | None:
    """ENCE that a calibrated ``members``-member ensemble would score with these scales."""
    scales = np.abs(np.ravel(sigma))
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((members, scales.size)) * scales
    truth = rng.standard_normal(scales.size) * scales
    sample_sigma = draws.std(axis=0, ddof=1)
    return ence(sample_sigma, draws.mean(axis=0) - truth, bins)


def variance_scale(sigma: np.ndarray, error: np.ndarray) -> float:
    """The factor a (sigma -> a sigma) that maximises the Gaussian likelihood of the errors."""
    sigma, error = np.ravel(sigma), np.ravel(error)
    used = sigma > 0
    if not used.any():
        raise ValueError("every sigma is 0: no scale can be fitted")
    return float(np.sqrt(np.mean((error[used] / sigma[used]) ** 2)))


def conformal_factor(sigma: np.ndarray, error: np.ndarray, level: float) -> float:
    """Split-conformal k: |e| <= k sigma holds with probability >= ``level`` on frames
    exchangeable with these."""
    sigma, error = np.ravel(sigma), np.ravel(error)
    used = sigma > 0
    scores = np.sort(np.abs(error[used]) / sigma[used])
    rank = math.ceil((scores.size + 1) * level)
    return float(scores[min(rank, scores.size) - 1])


def within(sigma: np.ndarray, error: np.ndarray, factor: float) -> float:
    """Fraction of errors with |e| <= factor * sigma."""
    return float(np.mean(np.abs(np.ravel(error)) <= factor * np.abs(np.ravel(sigma))))


def gaussian_nll(sigma: np.ndarray, error: np.ndarray, floor: float = 1e-6) -> float:
    """Mean Gaussian negative log-likelihood of the errors (sigmas floored at ``floor``)."""
    variance = np.maximum(np.ravel(sigma), floor) ** 2
    return float(np.mean(0.5 * np.log(2 * np.pi * variance)
                         + np.ravel(error) ** 2 / (2 * variance)))


def reliability(sigma: np.ndarray, error: np.ndarray, members: int,
                scale: float = 1.0, levels: tuple[float, ...] = LEVELS) -> list[dict]:
    """Per nominal level p: observed coverage of the Gaussian interval z_p sigma and of the
    Student-t interval for ``members`` members (both with sigma scaled by ``scale``)."""
    return [{"level": level,
             "gaussian": within(sigma, error, scale * float(norm.ppf((1 + level) / 2))),
             "student_t": within(sigma, error, scale * student_t_factor(members, level))}
            for level in levels]


def calibration_summary(calibration: tuple[np.ndarray, np.ndarray],
                        scored: dict[str, tuple[np.ndarray, np.ndarray]], members: int,
                        seed: int = 0) -> dict:
    """Everything the report shows about calibration: fitted on ``calibration`` (sigma, error),
    scored on each of ``scored`` ({name: (sigma, error)})."""
    calibration_sigma, calibration_error = (np.ravel(part) for part in calibration)
    if calibration_sigma.size != calibration_error.size:
        raise ValueError(f"calibration holds {calibration_sigma.size} sigmas but "
                         f"{calibration_error.size} errors; they must pair one to one")
    scale = variance_scale(*calibration)
    conformal = {f"{level:g}": conformal_factor(*calibration, level) for level in (0.68, 0.95)}
    conformal_levels = {level: conformal_factor(*calibration, level) for level in LEVELS}
    result: dict = {"members": members, "variance_scale": scale, "conformal_factor": conformal,
                    "expected_within_1_sigma": expected_coverage(members, 1.0),
                    "expected_within_2_sigma": expected_coverage(members, 2.0),
                    "calibration_components": int(calibration_sigma.size), "splits": {}}
    for name, (sigma, error) in scored.items():
        result["splits"][name] = {
            "within_1_sigma": within(sigma, error, 1.0),
            "within_2_sigma": within(sigma, error, 2.0),
            "recalibrated_within_1_sigma": within(sigma, error, scale),
            "recalibrated_within_2_sigma": within(sigma, error, 2 * scale),
            "conformal_within_0.68": within(sigma, error, conformal["0.68"]),
            "conformal_within_0.95": within(sigma, error, conformal["0.95"]),
            "ence": ence(sigma, error),
            "ence_calibrated_ensemble": simulated_calibrated_ence(sigma, members, seed=seed),
            "ence_recalibrated": ence(scale * np.ravel(sigma), error),
            "nll": gaussian_nll(sigma, error),
            "nll_recalibrated": gaussian_nll(scale * np.ravel(sigma), error),
            "reliability": reliability(sigma, error, members),
            "reliability_recalibrated": reliability(sigma, error, members, scale),
            "reliability_conformal": [
                {"level": level, "observed": within(sigma, error, factor)}
                for level, factor in conformal_levels.items()],
            "components": int(np.ravel(sigma).size),
        }
    return result
