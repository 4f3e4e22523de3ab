"""Metric functions against values worked out by hand."""

import numpy as np
import pytest

from gmdbench.evaluation import metrics

# two structures: 2 atoms and 1 atom
F = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
G = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.0]])
E = np.array([-10.0, -5.0])
E_HAT = np.array([-10.5, -4.99])
N = np.array([2, 1])


def test_force_errors():
    # |G - F| components: 0,1,0, 0,1,0, 0.5,0,0 -> sum 2.5 over 9
    assert metrics.force_mae(G, F) == pytest.approx(2.5 / 9)
    assert metrics.force_rmse(G, F) == pytest.approx(np.sqrt(2.25 / 9))


def test_cosine_skips_zero_reference_forces():
    # atom 0: (1,1,0).(1,0,0) / (sqrt2 * 1) = 1/sqrt2; atom 1: parallel -> 1; atom 2 skipped
    assert metrics.force_cosine(G, F) == pytest.approx((1 / np.sqrt(2) + 1.0) / 2)


def test_force_magnitude_mae():
    # | |G| - |F| |: |sqrt2 - 1|, |1 - 2|, |0.5 - 0|
    assert metrics.force_magnitude_mae(G, F) == pytest.approx((np.sqrt(2) - 1 + 1 + 0.5) / 3)


def test_energy_errors():
    assert metrics.energy_mae(E_HAT, E) == pytest.approx((0.5 + 0.01) / 2)
    assert metrics.energy_mae_per_atom(E_HAT, E, N) == pytest.approx((0.25 + 0.01) / 2)


def test_efwt_counts_structures_within_both_thresholds():
    close = F + 0.01
    structure = np.array([0, 0, 1])
    # structure 0 energy off by 0.5 eV -> fails; structure 1 within 0.02 eV and 0.0173 eV/A
    assert metrics.efwt(E_HAT, E, close, F, structure) == pytest.approx(0.5)
    assert metrics.efwt(E, E, G, F, structure) == pytest.approx(0.0)


def test_all_metrics_has_every_definition():
    result = metrics.all_metrics(E_HAT, E, G, F, N)
    assert set(result) == {"force_mae", "force_rmse", "force_cosine", "force_magnitude_mae",
                           "energy_mae", "energy_mae_per_atom", "efwt"}


def test_energy_decomposition_by_hand():
    from gmdbench.evaluation.metrics import energy_decomposition

    # molecule a: errors +1, +3 (offset 2, relative 1, 1); molecule b: -1 (offset -1, relative 0)
    predicted = np.array([11.0, 13.0, 4.0])
    reference = np.array([10.0, 10.0, 5.0])
    result = energy_decomposition(predicted, reference, np.array(["a", "a", "b"]))
    assert result["energy_mae"] == pytest.approx(5 / 3)
    assert result["relative_energy_mae"] == pytest.approx(2 / 3)
    assert result["offset_mae"] == pytest.approx(1.5)  # mean over molecules, not frames (5/3)


# -- values chosen so that a metric's near neighbours give other numbers (bench/mutation.py) --
F2 = np.array([[0.1, 0.0, 0.0], [0.0, 0.2, 0.0]])  # two atoms: (N, 3) is not square
G2 = np.array([[0.1, 0.1, 0.0], [0.0, 0.0, 0.0]])


def test_cosine_and_magnitude_on_two_small_atoms():
    # atom 0: 0.01 / (0.1 * sqrt(0.02)) = 1/sqrt2 (a denominator under 1: no clamp to 1);
    # atom 1: predicted zero -> cosine 0, not nan (the clamp keeps 0/0 out)
    assert metrics.force_cosine(G2, F2) == pytest.approx((1 / np.sqrt(2) + 0.0) / 2)
    # | |G| - |F| | per atom: |sqrt(0.02) - 0.1|, |0 - 0.2|
    assert metrics.force_magnitude_mae(G2, F2) == pytest.approx(
        (np.sqrt(0.02) - 0.1 + 0.2) / 2)


def test_cosine_excludes_a_reference_force_of_exactly_the_threshold():
    reference = np.array([[1.0, 0.0, 0.0], [1e-10, 0.0, 0.0]])
    predicted = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    assert metrics.force_cosine(predicted, reference) == pytest.approx(1.0)  # "> 1e-10"


def test_per_atom_energy_divides_by_the_atom_count():
    # errors 0.5 on 4 atoms and 0.01 on 1: (0.125 + 0.01) / 2 (0.5 ** 4 would give 0.0625)
    assert metrics.energy_mae_per_atom(np.array([0.5, 0.01]), np.zeros(2),
                                       np.array([4, 1])) == pytest.approx(0.0675)


def test_efwt_measures_the_error_not_the_sum_and_excludes_the_threshold():
    reference = np.array([[1.0, 0.0, 0.0]])
    structure = np.zeros(1, int)
    close = np.array([[1.01, 0.0, 0.0]])  # off by 0.01 from a large force: within
    assert metrics.efwt(np.zeros(1), np.zeros(1), close, reference, structure) == 1.0
    on_threshold = np.array([[0.03, 0.0, 0.0]])  # an error norm of exactly 0.03: not "< 0.03"
    assert metrics.efwt(np.zeros(1), np.zeros(1), on_threshold, np.zeros((1, 3)),
                        structure) == 0.0


def test_energy_decomposition_with_uneven_offsets():
    from gmdbench.evaluation.metrics import energy_decomposition

    # a: errors +1, +4 (offset 2.5, relative 1.5 and 1.5); b: -2 (offset -2, relative 0)
    result = energy_decomposition(np.array([1.0, 4.0, -2.0]), np.zeros(3),
                                  np.array(["a", "a", "b"]))
    assert result == pytest.approx({"energy_mae": 7 / 3, "relative_energy_mae": 1.0,
                                    "offset_mae": 2.25})
