"""Paired comparisons over seeds, with their confidence interval, tests and power (scipy.stats).

An active-learning rule and its baseline run on the same seeds (same round-0 model, same pool
subset), so their difference is taken seed by seed: the spread of the differences, not of each
rule, decides. A verdict is "lower" or "higher" only where the confidence interval of the mean
difference excludes 0; otherwise "not distinguishable", with the number of paired seeds that
would detect the observed difference at 80% power (two-sided, at the same level), so a reader
sees whether the study was too small or the difference too small.

A table of comparisons is one family: with eight rows at 5% each, one "significant" row is
what chance alone gives a third of the time. ``adjust_for_multiplicity`` holds the false
discovery rate of a table's verdicts at the same level (Benjamini-Hochberg, scipy's own
``false_discovery_control``; it holds under the positive dependence of comparisons that share
a baseline), and a verdict is "lower" or "higher" only where the adjusted p-value says so. Each
row's interval is then widened to the false-coverage-rate level of Benjamini and Yekutieli
(2005), 1 - max(R, 1) alpha / m for R called rows of m tested: a called row's adjusted
interval excludes 0 and an uncalled row's holds it, so every verdict reads off its own
adjusted interval.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import false_discovery_control, t, ttest_rel, wilcoxon

POWER = 0.8
MAX_SEEDS = 1000  # the seeds-needed search gives up here (a difference of ~0)


def trapezoid_mean(labels: list[float], values: list[float]) -> float:
    """The mean of a curve over its label range (trapezoid area / range): one number per seed
    for "how low was the OOD error over the whole budget", free of any target."""
    if len(labels) == 1:
        return float(values[0])
    return float(np.trapezoid(values, labels) / (labels[-1] - labels[0]))


def first_reaching(labels: list[int], values: list[float], target: float) -> int | None:
    """The fewest labels at which ``values`` is at or below ``target``; None if never."""
    return next((label for label, value in zip(labels, values, strict=True)
                 if value <= target), None)


def _detectable(sd: float, n: int, level: float) -> float:
    """The mean difference a paired t-test of n seeds detects with POWER (normal-shift
    approximation with t quantiles)."""
    return (t.ppf(1 - (1 - level) / 2, n - 1) + t.ppf(POWER, n - 1)) * sd / math.sqrt(n)


def paired_comparison(values: dict[int, float], baseline: dict[int, float],
                      level: float = 0.95) -> dict:
    """values - baseline over the seeds both have: mean, confidence interval, paired t-test
    and Wilcoxon signed-rank p-values, the detectable difference and the seeds needed."""
    seeds = sorted(set(values) & set(baseline))
    differences = np.array([values[s] - baseline[s] for s in seeds], dtype=float)
    n = len(seeds)
    result: dict = {"seeds": seeds, "n": n, "level": level,
                    "mean_difference": float(differences.mean()) if n else None,
                    "ci": None, "t_test_p": None, "wilcoxon_p": None,
                    "detectable_difference": None, "seeds_needed": None,
                    "verdict": "not distinguishable"}
    if n < 2:
        return result
    sd = float(differences.std(ddof=1))
    mean = float(differences.mean())
    if sd == 0.0:  # every seed moved by the same amount: no interval to speak of
        result["verdict"] = "lower" if mean < 0 else "higher" if mean > 0 else \
            "not distinguishable"
        result["ci"] = [mean, mean]
        return result
    half = float(t.ppf(1 - (1 - level) / 2, n - 1) * sd / math.sqrt(n))
    result["ci"] = [mean - half, mean + half]
    result["t_test_p"] = float(ttest_rel([values[s] for s in seeds],
                                         [baseline[s] for s in seeds]).pvalue)
    if n >= 6:  # sd > 0 here, so some difference is non-zero, as Wilcoxon needs
        result["wilcoxon_p"] = float(wilcoxon(differences).pvalue)
    result["detectable_difference"] = float(_detectable(sd, n, level))
    result["seeds_needed"] = next(
        (k for k in range(2, MAX_SEEDS + 1) if _detectable(sd, k, level) <= abs(mean)), None)
    if mean + half < 0:
        result["verdict"] = "lower"
    elif mean - half > 0:
        result["verdict"] = "higher"
    return result


def adjust_for_multiplicity(comparisons: list[dict]) -> None:
    """Benjamini-Hochberg adjusted p-values over ``comparisons`` (results of
    ``paired_comparison``, one family), in place: each gains ``adjusted_p`` (None where it has
    no test), ``unadjusted_verdict`` (its own interval's verdict) and ``adjusted_ci`` at
    ``adjusted_level`` (the false-coverage-rate interval; its own interval and None where it
    has no test), and its ``verdict`` is "not distinguishable" unless its adjusted p-value is
    below 1 - level. Comparisons whose differences were all equal (no test, no spread) keep
    their verdict."""
    tested = [c for c in comparisons if c["t_test_p"] is not None]
    adjusted = false_discovery_control([c["t_test_p"] for c in tested]) if tested else []
    for comparison in comparisons:
        comparison["unadjusted_verdict"] = comparison["verdict"]
        comparison["adjusted_p"] = None
        comparison["adjusted_ci"] = comparison["ci"]
        comparison["adjusted_level"] = None
    for comparison, p in zip(tested, adjusted, strict=True):
        comparison["adjusted_p"] = float(p)
        if p >= 1 - comparison["level"]:
            comparison["verdict"] = "not distinguishable"
    called = sum(c["verdict"] != "not distinguishable" for c in tested)
    for comparison in tested:
        # the row's own t interval, rescaled from its level to the FCR-adjusted one
        alpha = 1 - comparison["level"]
        adjusted_level = 1 - max(called, 1) * alpha / len(tested)
        low, high = comparison["ci"]
        dof = comparison["n"] - 1
        scale = t.ppf(1 - (1 - adjusted_level) / 2, dof) / t.ppf(1 - alpha / 2, dof)
        centre, half = (low + high) / 2, (high - low) / 2 * scale
        comparison["adjusted_ci"] = [centre - half, centre + half]
        comparison["adjusted_level"] = adjusted_level
