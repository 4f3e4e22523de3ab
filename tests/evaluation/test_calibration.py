"""Calibration yardsticks and recalibration against values worked out by hand, and against a
simulated calibrated ensemble; within-molecule skill and per-atom signals by hand."""

import math

import numpy as np
import pytest
from scipy.stats import norm, t

from gmdbench.evaluation.calibration import (
    LEVELS,
    calibration_summary,
    conformal_factor,
    expected_coverage,
    gaussian_nll,
    simulated_calibrated_ence,
    student_t_factor,
    variance_scale,
    within,
)
from gmdbench.evaluation.uncertainty import (
    atom_force_deviation,
    ence,
    group_mean,
    per_frame_max,
    relative_force_deviation,
    within_group_spearman,
)


def _t2_two_sided(x: float) -> float:
    """P(|T| <= x) for Student's t with 2 degrees of freedom, in closed form."""
    return x / math.sqrt(2 + x * x)


def test_expected_coverage_of_three_members_is_students_t_not_gaussian():
    # k / sqrt(1 + 1/3) = k * sqrt(3) / 2
    assert expected_coverage(3, 1.0) == pytest.approx(_t2_two_sided(math.sqrt(3) / 2))
    assert expected_coverage(3, 2.0) == pytest.approx(_t2_two_sided(math.sqrt(3)))
    assert expected_coverage(3, 1.0) == pytest.approx(0.5222, abs=1e-4)
    assert expected_coverage(3, 2.0) == pytest.approx(0.7746, abs=1e-4)
    # many members approach the Gaussian 0.683
    assert expected_coverage(10_000, 1.0) == pytest.approx(0.6827, abs=1e-3)
    with pytest.raises(ValueError):
        expected_coverage(1, 1.0)


def test_a_simulated_calibrated_ensemble_covers_what_the_yardstick_says():
    rng = np.random.default_rng(3)
    members, n = 3, 200_000
    scale = rng.uniform(0.1, 2.0, n)
    draws = rng.standard_normal((members, n)) * scale
    truth = rng.standard_normal(n) * scale
    sigma, error = draws.std(axis=0, ddof=1), draws.mean(axis=0) - truth
    for k in (1.0, 2.0):
        assert within(sigma, error, k) == pytest.approx(expected_coverage(members, k), abs=0.005)
    for level in (0.5, 0.9):
        assert within(sigma, error, student_t_factor(members, level)) == pytest.approx(
            level, abs=0.005)


def test_calibrated_ence_of_three_members_is_far_from_zero():
    sigma = np.random.default_rng(0).uniform(0.1, 1.0, 50_000)
    value = simulated_calibrated_ence(sigma, 3, seed=1)
    assert 0.8 < value < 2.0  # a perfect 3-member ensemble does not score ENCE 0
    assert value == simulated_calibrated_ence(sigma, 3, seed=1)  # seeded
    assert simulated_calibrated_ence(sigma, 200, seed=1) < 0.3  # many members: near 0


def test_variance_scale_maximises_the_gaussian_likelihood():
    sigma = np.array([1.0, 2.0, 1.0])
    error = np.array([2.0, 2.0, 0.0])
    # a^2 = mean((2/1)^2, (2/2)^2, 0) = 5/3
    assert variance_scale(sigma, error) == pytest.approx(math.sqrt(5 / 3))
    scale = variance_scale(sigma, error)
    for other in (0.9 * scale, 1.1 * scale):
        assert gaussian_nll(other * sigma, error) > gaussian_nll(scale * sigma, error)
    with pytest.raises(ValueError):
        variance_scale(np.zeros(3), error)


def test_gaussian_nll_by_hand():
    # one error of 1 with sigma 1: 0.5 log(2 pi) + 0.5
    assert gaussian_nll(np.array([1.0]), np.array([1.0])) == pytest.approx(
        0.5 * math.log(2 * math.pi) + 0.5)


def test_conformal_factor_is_the_ceil_n_plus_one_quantile():
    sigma = np.ones(4)
    error = np.array([0.1, -0.4, 0.2, 0.3])
    # scores sorted 0.1 0.2 0.3 0.4; level 0.5: ceil(5 * 0.5) = 3rd -> 0.3 (not the median)
    assert conformal_factor(sigma, error, 0.5) == pytest.approx(0.3)
    assert conformal_factor(sigma, error, 0.99) == pytest.approx(0.4)  # capped at the largest
    # sigma divides the score
    assert conformal_factor(2 * sigma, error, 0.5) == pytest.approx(0.15)


def test_recalibration_is_fitted_on_one_split_and_scored_on_another():
    rng = np.random.default_rng(0)
    sigma = np.full(20_000, 0.5)
    error = rng.standard_normal(20_000)  # the sigmas are half the real spread
    summary = calibration_summary((sigma[:10_000], error[:10_000]),
                                  {"held_out": (sigma[10_000:], error[10_000:])}, members=3)
    held_out = summary["splits"]["held_out"]
    assert summary["variance_scale"] == pytest.approx(2.0, rel=0.03)
    assert held_out["within_1_sigma"] == pytest.approx(0.383, abs=0.02)
    assert held_out["recalibrated_within_1_sigma"] == pytest.approx(0.683, abs=0.02)
    assert held_out["conformal_within_0.95"] == pytest.approx(0.95, abs=0.01)
    assert held_out["nll_recalibrated"] < held_out["nll"]
    assert summary["expected_within_1_sigma"] == pytest.approx(0.5222, abs=1e-4)


def test_within_molecule_spearman_removes_the_between_molecule_part():
    # two molecules: within each, the signal ranks the error exactly backwards; between them
    # the larger-signal molecule has the larger errors, so pooled rho is positive
    groups = np.array(["a"] * 5 + ["b"] * 5)
    signal = np.array([1, 2, 3, 4, 5, 11, 12, 13, 14, 15], dtype=float)
    error = np.array([5, 4, 3, 2, 1, 15, 14, 13, 12, 11], dtype=float)
    result = within_group_spearman(signal, error, groups)
    assert result["median"] == pytest.approx(-1.0)
    assert result["groups"] == 2 and result["of_groups"] == 2
    assert result["per_group"] == {"a": pytest.approx(-1.0), "b": pytest.approx(-1.0)}
    # too few frames in a group: left out, and counted as such
    short = within_group_spearman(signal[:7], error[:7], groups[:7])
    assert short["groups"] == 1 and short["of_groups"] == 2


def test_group_mean_keeps_only_molecule_identity():
    values = np.array([1.0, 3.0, 10.0])
    np.testing.assert_allclose(group_mean(values, np.array(["x", "x", "y"])), [2.0, 2.0, 10.0])


def test_per_atom_signals_by_hand():
    sigma = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(atom_force_deviation(sigma), [5.0, 1.0, 0.0])  # norm, not mean
    forces = np.array([[0.0, 0.0, 4.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(relative_force_deviation(sigma, forces, 1.0), [1.0, 1.0, 0.0])
    # frames of 2 and 1 atoms: the worst atom, not the mean
    np.testing.assert_allclose(per_frame_max(np.array([5.0, 1.0, 0.5]), np.array([2, 1])),
                               [5.0, 0.5])


def test_two_members_use_one_degree_of_freedom():
    # t with 1 dof is Cauchy: P(|T| <= x) = 2 atan(x) / pi; k / sqrt(1 + 1/2)
    assert expected_coverage(2, 1.0) == pytest.approx(2 * math.atan(1 / math.sqrt(1.5))
                                                      / math.pi)
    # the Student-t factor inverts it: Cauchy quantile tan(pi (q - 1/2)), q = (1 + p) / 2
    assert student_t_factor(2, 0.5) == pytest.approx(math.sqrt(1.5) * math.tan(math.pi / 4))
    assert student_t_factor(4, 0.9) == pytest.approx(
        math.sqrt(1.25) * t.ppf(0.95, 3))


def test_within_counts_an_error_exactly_on_the_bound():
    assert within(np.array([1.0, 1.0]), np.array([2.0, -3.0]), 2.0) == 0.5


def test_conformal_rank_for_an_odd_number_of_scores_and_zero_sigmas_left_out():
    # 5 scores 1..5; level 0.6: ceil(6 * 0.6) = 4th -> 4 (n, not n + 1, would give the 3rd)
    assert conformal_factor(np.ones(5), np.arange(1.0, 6.0), 0.6) == 4.0
    # a component of zero sigma has no finite score: left out, not counted as infinite
    sigma = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    error = np.array([9.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert conformal_factor(sigma, error, 0.6) == 4.0


def test_gaussian_nll_floors_a_zero_sigma():
    floor = 1e-6
    assert gaussian_nll(np.array([0.0]), np.array([0.0])) == pytest.approx(
        0.5 * math.log(2 * math.pi * floor ** 2))


def test_reliability_by_hand():
    from gmdbench.evaluation.calibration import reliability

    sigma = np.ones(4)
    error = np.array([0.1, 0.5, 1.0, 2.0])
    rows = reliability(sigma, error, members=3, levels=(0.5, 0.9))
    z50, z90 = norm.ppf(0.75), norm.ppf(0.95)  # 0.674, 1.645
    assert rows[0]["gaussian"] == np.mean(error <= z50) == 0.5
    assert rows[1]["gaussian"] == np.mean(error <= z90) == 0.75
    assert rows[0]["student_t"] == np.mean(error <= student_t_factor(3, 0.5))
    scaled = reliability(sigma, error, members=3, scale=0.5, levels=(0.9,))
    assert scaled[0]["gaussian"] == np.mean(error <= 0.5 * z90) == 0.5
    assert scaled[0]["student_t"] == np.mean(error <= 0.5 * student_t_factor(3, 0.9))


def test_simulated_ence_uses_the_sample_spread_of_m_members():
    """Two members, constant scale: an independent draw of the same model (sample std with
    ddof = 1) gives the same ENCE to Monte Carlo precision; ddof = 0 would not."""
    scales = np.ones(200_000)
    rng = np.random.default_rng(42)
    draws = rng.standard_normal((2, scales.size))
    truth = rng.standard_normal(scales.size)
    independent = ence(draws.std(axis=0, ddof=1), draws.mean(axis=0) - truth)
    biased = ence(draws.std(axis=0, ddof=0), draws.mean(axis=0) - truth)
    value = simulated_calibrated_ence(scales, 2, seed=5)
    assert value == pytest.approx(independent, rel=0.05)
    assert abs(biased - independent) > 0.2 * independent  # the test can tell them apart


def test_calibration_summary_fields_are_what_they_name():
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.5, 1.5, 4000)
    error = rng.standard_normal(4000) * 3 * sigma  # a scale near 3: 2 * a differs from 2 ** a
    summary = calibration_summary((sigma[:2000], error[:2000]),
                                  {"rest": (sigma[2000:], error[2000:])}, members=3)
    scale = summary["variance_scale"]
    rest = summary["splits"]["rest"]
    s, e = sigma[2000:], error[2000:]
    assert summary["expected_within_2_sigma"] == expected_coverage(3, 2.0)
    assert rest["within_2_sigma"] == within(s, e, 2.0)
    assert rest["recalibrated_within_2_sigma"] == within(s, e, 2 * scale)
    assert rest["ence_recalibrated"] == ence(scale * s, e)
    assert rest["nll_recalibrated"] == gaussian_nll(scale * s, e)
    assert rest["conformal_within_0.68"] == within(s, e, summary["conformal_factor"]["0.68"])
    assert rest["components"] == 2000 and summary["calibration_components"] == 2000
    assert [r["level"] for r in rest["reliability_conformal"]] == list(LEVELS)
    assert rest["reliability_conformal"][-1]["observed"] == within(
        s, e, conformal_factor(sigma[:2000], error[:2000], LEVELS[-1]))


def test_calibration_summary_refuses_unpaired_sigmas_and_errors():
    with pytest.raises(ValueError, match="3 sigmas but 2 errors"):
        calibration_summary((np.ones(3), np.ones(2)), {}, members=3)
    with pytest.raises(ValueError, match="2 sigmas but 3 errors"):
        calibration_summary((np.ones(2), np.ones(3)), {}, members=3)
