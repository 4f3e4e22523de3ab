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
