"""The active-learning report's paired section, on hand-made per-seed numbers: every verdict
it writes is the adjusted one, and a row whose own interval excludes 0 but whose adjusted p
does not pass is named as such, whichever metric it is."""
import pytest

from gmdbench.report.active_learning import comparisons, paired_section

CONFIG = {"rules": ["random", "ensemble", "no_label"], "pool": {"per_seed": 5}}


def _study(area_shift: list[float], final_shift: list[float], control_shift: list[float]
           ) -> dict[str, dict[int, dict]]:
    random = {s: {"area": 0.09 + 0.002 * s, "final": 0.083 + 0.001 * s} for s in range(4)}
    ensemble = {s: {"area": random[s]["area"] + a, "final": random[s]["final"] + f}
                for s, (a, f) in enumerate(zip(area_shift, final_shift, strict=True))}
    control = {s: {"area": random[s]["area"] + c, "final": random[s]["final"] + c}
               for s, c in enumerate(control_shift)}
    return {"random": random, "ensemble": ensemble, "no_label": control}


def test_a_final_row_the_adjustment_removed_is_named_with_both_p_values():
    compared = comparisons(_study([0.004, -0.006, 0.001, -0.003],
                                  [-0.003, -0.0015, -0.0028, -0.0018],
                                  [0.01, -0.008, 0.02, -0.005]), "random", "no_label")
    final = compared["ensemble"]["final vs random"]
    assert final["t_test_p"] < 0.05 <= final["adjusted_p"]
    assert final["ci"][1] < 0  # its own interval excludes 0
    assert final["unadjusted_verdict"] == "lower" and final["verdict"] == "not distinguishable"
    lines = paired_section(compared, CONFIG)
    named = [line for line in lines if line.startswith("- ensemble against random (final)")]
    assert len(named) == 1
    assert "not distinguishable once the table's 6 comparisons are accounted for" in named[0]
    assert f"p = {final['t_test_p']:.3f}, adjusted p = {final['adjusted_p']:.3f}" in named[0]
    # no row is called, so every interval is at 1 - 5% / 6; this one reaches over 0
    low, high = final["adjusted_ci"]
    assert final["adjusted_level"] == pytest.approx(1 - 0.05 / 6) and low < 0 < high
    adjusted = f"99.2% CI {low:+.4f} to {high:+.4f}"
    assert f"excludes 0, its adjusted {adjusted} does not; p = " in named[0]
    row = next(line for line in lines if line.startswith("| ensemble | final vs random |"))
    assert f"| {final['adjusted_p']:.3f} | {adjusted} | - |" in row  # Wilcoxon: under 6 seeds
    # a final row the adjustment did not change gets no bullet of its own
    assert not any(line.startswith("- ensemble against no_label (final)") for line in lines)
    area = compared["ensemble"]["area vs no_label"]
    bullet = next(line for line in lines if line.startswith("- ensemble against no_label (area)"))
    assert f"p = {area['t_test_p']:.3f}, adjusted p = {area['adjusted_p']:.3f})" in bullet
    assert "not distinguishable over 4 paired seeds" in bullet


def test_a_difference_that_survives_the_adjustment_is_called_with_its_adjusted_p():
    compared = comparisons(_study([-0.010, -0.011, -0.0105, -0.0098],
                                  [-0.020, -0.021, -0.0195, -0.0202],
                                  [0.010, 0.011, 0.0102, 0.0099]), "random", "no_label")
    assert all(test["verdict"] != "not distinguishable"
               for tests in compared.values() for test in tests.values())
    lines = paired_section(compared, CONFIG)
    area = compared["ensemble"]["area vs random"]
    bullet = next(line for line in lines if line.startswith("- ensemble against random (area)"))
    # its size beside the other rule's own mean over the same seeds, worked by hand: the
    # shifts average -0.010325, random's areas 0.090-0.096 average 0.093, so 11.1% of it
    assert area["other_mean"] == pytest.approx(0.093)
    assert bullet.startswith("- ensemble against random (area): lower OOD error over the "
                             "budget by 0.0103 eV/A, 11.1% of random's 0.0930 (95% CI ")
    assert f"adjusted p = {area['adjusted_p']:.3f})" in bullet
    control = next(line for line in lines if line.startswith("- no_label against random (area)"))
    assert ": higher OOD error over the budget" in control
    # a called final row is in the table, not repeated as a bullet
    assert not any("(final)" in line for line in lines if line.startswith("- "))
    # 'seeds needed' is read off the observed difference: said to be a planning figure that
    # can be optimistic (called rows' differences are biased away from 0)
    legend = next(line for line in lines if line.startswith("Each rule minus the other"))
    assert "a planning figure for another study, not a property of this one" in legend
    assert "those of called rows biased away from 0, so it can be optimistic" in legend
