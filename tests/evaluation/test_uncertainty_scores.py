"""Uncertainty scores and the EFwT definition against values worked out by hand, each built so
that the definition's near neighbours (ddof 0, mean instead of max, component instead of norm,
a signal scored against itself) give another number; and at their edges and defaults:
ensembles of two and four members (where ddof and the member count cannot hide behind M = 3),
values that are not whole numbers (so floor division shows), thresholds hit exactly, and each
default bin count or frame minimum met and missed by one."""

import numpy as np
import pytest
from scipy.stats import norm

from gmdbench.evaluation import metrics
from gmdbench.evaluation.uncertainty import (
    atom_sigma,
    binned_error,
    coverage,
    ence,
    ensemble_forces,
    group_mean,
    per_frame,
    per_frame_max,
    relative_force_deviation,
    signal_calibration,
    spearman,
    within_group_spearman,
)


def test_efwt_takes_the_per_atom_error_norm_not_a_component():
    # one atom off by (0.02, 0.02, 0.02): every component < 0.03, the norm 0.0346 is not
    reference = np.zeros((1, 3))
    predicted = np.full((1, 3), 0.02)
    assert metrics.efwt(np.zeros(1), np.zeros(1), predicted, reference, np.zeros(1, int)) == 0.0
    assert metrics.efwt(np.zeros(1), np.zeros(1), predicted / 2, reference,
                        np.zeros(1, int)) == 1.0  # norm 0.0173: within


def test_efwt_takes_the_worst_atom_not_the_mean():
    # two atoms, errors of norm 0.05 and 0: the mean (0.025) is within 0.03, the max is not
    reference = np.zeros((2, 3))
    predicted = np.array([[0.05, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert metrics.efwt(np.zeros(1), np.zeros(1), predicted, reference, np.zeros(2, int)) == 0.0


def test_efwt_energy_threshold_is_strict_and_in_ev():
    forces = np.zeros((1, 3))
    structure = np.zeros(1, int)
    assert metrics.efwt(np.array([0.0199]), np.zeros(1), forces, forces, structure) == 1.0
    assert metrics.efwt(np.array([0.02]), np.zeros(1), forces, forces, structure) == 0.0


def test_ensemble_sigma_is_the_sample_spread():
    # members 0, 1, 2 on one component: mean 1, sample variance 1 (ddof=1; ddof=0 gives 2/3)
    members = [np.full((1, 3), value) for value in (0.0, 1.0, 2.0)]
    mean, sigma = ensemble_forces(members)
    np.testing.assert_allclose(mean, 1.0)
    np.testing.assert_allclose(sigma, 1.0)


def test_atom_sigma_is_the_rms_over_components_and_frames_average_atoms():
    component = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    atoms = atom_sigma(component)
    np.testing.assert_allclose(atoms, [np.sqrt(25 / 3), 0.0])  # not the mean 7/3
    np.testing.assert_allclose(per_frame(atoms, np.array([2])), [np.sqrt(25 / 3) / 2])


def test_spearman_scores_the_signal_against_the_error():
    signal = np.array([1.0, 2.0, 3.0, 4.0])
    error = np.array([10.0, 30.0, 20.0, 40.0])
    # ranks 1,2,3,4 against 1,3,2,4: 1 - 6 * (0 + 1 + 1 + 0) / (4 * 15) = 0.8
    assert spearman(signal, error) == pytest.approx(0.8)
    assert spearman(error, signal) == pytest.approx(0.8)
    assert spearman(signal, -error) == pytest.approx(-0.8)
    assert spearman(np.ones(4), error) is None  # a constant signal ranks nothing


def test_ence_and_coverage_by_hand():
    # bins of sigma: (1, 1) with errors (1, -1): RMV 1, RMSE 1 -> 0; (2, 2) with errors (1, 1):
    # RMV 2, RMSE 1 -> 0.5; ENCE = 0.25
    assert ence(np.array([1.0, 1.0, 2.0, 2.0]), np.array([1.0, -1.0, 1.0, 1.0]),
                bins=2) == pytest.approx(0.25)
    result = coverage(np.ones(4), np.array([0.5, -1.5, 2.5, -0.9]))
    assert result["within_1_sigma"] == pytest.approx(0.5)
    assert result["within_2_sigma"] == pytest.approx(0.75)


def test_binned_error_by_hand_and_the_small_cases():
    """Equal-count bins in signal order (stable for ties), each with its range, means and
    count; Spearman needs three frames; one member is no ensemble; descriptor rows average
    per frame like scalars."""
    signal = np.array([0.4, 0.1, 0.3, 0.2, 0.5])
    error = np.array([4.0, 1.0, 3.0, 2.0, 6.0])
    bins = binned_error(signal, error, bins=2)
    assert bins == [
        {"low": 0.1, "high": 0.3, "signal": pytest.approx(0.2), "error": pytest.approx(2.0),
         "count": 3},
        {"low": 0.4, "high": 0.5, "signal": pytest.approx(0.45), "error": pytest.approx(5.0),
         "count": 2}]
    assert len(binned_error(signal, error, bins=8)) == 5  # never an empty bin
    assert spearman(signal[:2], error[:2]) is None
    assert spearman(signal[:3], error[:3]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="two or more members"):
        ensemble_forces([np.zeros((2, 3))])
    rows = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0]])
    np.testing.assert_allclose(per_frame(rows, np.array([2, 1])), [[2.0, 20.0], [5.0, 50.0]])
    # quartiles of the per-group rhos: three groups of 5 frames with rho 1, 1 and -1
    groups = np.repeat(["a", "b", "c"], 5)
    up = np.arange(5.0)
    signal = np.concatenate([up, up, up])
    error = np.concatenate([up, up, -up])
    result = within_group_spearman(signal, error, groups)
    assert result["median"] == pytest.approx(1.0)
    assert result["quartiles"] == pytest.approx([0.0, 1.0])  # numpy's linear percentiles
    assert within_group_spearman(signal, error, groups, min_frames=6)["median"] is None
    # four groups with rho -1, 0, 0.5, 1 (ranks by hand: sum d^2 = 40, 20, 10, 0 over n = 5):
    # the quartiles interpolate, -0.25 and 0.625
    orders = ([5, 4, 3, 2, 1], [2, 5, 3, 1, 4], [3, 2, 1, 5, 4], [1, 2, 3, 4, 5])
    groups = np.repeat(["a", "b", "c", "d"], 5)
    result = within_group_spearman(np.tile(up, 4), np.concatenate(orders).astype(float), groups)
    assert sorted(result["per_group"].values()) == pytest.approx([-1.0, 0.0, 0.5, 1.0])
    assert result["quartiles"] == pytest.approx([-0.25, 0.625])
    assert result["median"] == pytest.approx(0.25)


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
