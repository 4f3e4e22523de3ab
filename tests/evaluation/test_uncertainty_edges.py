"""The uncertainty scores at their edges and defaults, worked by hand: ensembles of two and four
members (where ddof and the member count cannot hide behind M = 3), values that are not whole
numbers (so floor division shows), thresholds hit exactly, and each default bin count or
frame minimum met and missed by one."""

import numpy as np
import pytest
from scipy.stats import norm

from gmdbench.evaluation.uncertainty import (
    binned_error,
    coverage,
    ence,
    ensemble_forces,
    group_mean,
    per_frame_max,
    relative_force_deviation,
    signal_calibration,
    spearman,
    within_group_spearman,
)


@pytest.mark.parametrize("members", [2, 4])
def test_ensemble_sigma_is_numpys_sample_std_for_two_and_four_members(members):
    rng = np.random.default_rng(members)
    forces = [rng.normal(size=(5, 3)) for _ in range(members)]
    mean, sigma = ensemble_forces(forces)
    np.testing.assert_allclose(mean, np.mean(forces, axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sigma, np.std(forces, axis=0, ddof=1), rtol=1e-12, atol=1e-12)


def test_two_members_by_hand():
    # 0.3 and 1.0: mean 0.65, sample variance 0.7^2 / 2 = 0.245 (no floor division: 0.245 > 0)
    mean, sigma = ensemble_forces([np.full((1, 3), 0.3), np.full((1, 3), 1.0)])
    np.testing.assert_allclose(mean, 0.65)
    np.testing.assert_allclose(sigma, np.sqrt(0.245))


def test_spearman_is_none_only_when_undefined():
    signal = np.array([0.0, 0.5, 1.0])  # a range of exactly 1
    assert spearman(signal, np.array([0.1, 0.3, 0.2])) == pytest.approx(0.5)
    assert spearman(signal, np.full(3, 0.7)) is None  # a constant error ranks nothing
    assert spearman(signal[:2], np.array([0.1, 0.3])) is None  # two frames: no Spearman
    four = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(four, four) == pytest.approx(1.0)


def test_the_default_bin_counts():
    signal = np.arange(100.0)
    error = signal / 10
    assert len(binned_error(signal, error)) == 8
    assert len(signal_calibration(signal, error)["binned"]) == 8
    # ENCE's default of ten bins: sigma 1..20, errors 0 -> each bin |RMV - 0| / RMV = 1 (any
    # count); errors equal to sigma in the first 2 frames only: one bin of ten is calibrated
    sigma = np.arange(1.0, 21.0)
    error = np.concatenate([sigma[:2], np.zeros(18)])
    # (nine bins give (1 - sqrt(5/14) + 8) / 9 = 0.93, eleven 10/11 = 0.91)
    assert ence(sigma, error) == pytest.approx(0.9)


def test_ence_skips_bins_whose_sigmas_are_all_zero_and_goes_on():
    # sorted by sigma the zero bin comes first; the others: RMV 1, RMSE 1 -> 0 and RMV 2,
    # RMSE 1 -> 0.5
    sigma = np.array([0.0, 0.0, 1.0, 1.0, 2.0, 2.0])
    error = np.array([5.0, 5.0, 1.0, -1.0, 1.0, -1.0])
    assert ence(sigma, error, bins=3) == pytest.approx(0.25)
    assert ence(np.zeros(4), np.ones(4), bins=2) is None  # no scale anywhere


def test_coverage_counts_an_error_equal_to_its_sigma_as_inside():
    result = coverage(np.array([1.0, 1.0]), np.array([1.0, 2.0]))
    assert result["within_1_sigma"] == 0.5
    assert result["within_2_sigma"] == 1.0
    assert result["gaussian_1_sigma"] == pytest.approx(norm.cdf(1) - norm.cdf(-1), abs=1e-4)
    assert result["gaussian_2_sigma"] == pytest.approx(norm.cdf(2) - norm.cdf(-2), abs=1e-4)


def test_relative_deviation_and_group_means_are_true_divisions():
    sigma = np.array([[0.3, 0.4, 0.0]])  # epsilon 0.5
    forces = np.array([[3.0, 4.0, 0.0]])  # |F| 5
    np.testing.assert_allclose(relative_force_deviation(sigma, forces, level=0.5), [0.5 / 5.5])
    np.testing.assert_allclose(group_mean(np.array([1.0, 2.0, 7.0]), np.array(["a", "a", "b"])),
                               [1.5, 1.5, 7.0])


def test_per_frame_max_over_three_frames():
    values = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 0.5])
    np.testing.assert_allclose(per_frame_max(values, np.array([2, 2, 2])), [3.0, 5.0, 4.0])


def test_within_group_default_minimum_is_five_frames_and_more_count():
    up = np.arange(6.0)
    groups = np.array(["four"] * 4 + ["five"] * 5 + ["six"] * 6)
    signal = np.concatenate([up[:4], up[:5], up])
    result = within_group_spearman(signal, signal, groups)
    assert sorted(result["per_group"]) == ["five", "six"]
    assert result["groups"] == 2 and result["of_groups"] == 3
