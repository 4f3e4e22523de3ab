"""The active-learning study's cost read from its archived units (pipeline/study_cost.py)."""

from __future__ import annotations

import pytest

from gmdbench.pipeline.study_cost import cost_lines, study_cost

RULES = ["random", "ensemble", "no_label"]


def test_each_missing_unit_is_priced_at_its_rule_s_median_not_its_mean():
    # random: 10, 12 and a loaded 60 min -> median 12 (the mean, 27.3, would be moved by one
    # unit that shared the cores); ensemble 20, 30 -> 25; no_label 5, 5 -> 5
    walls = [("random", 0, 600), ("ensemble", 0, 1200), ("no_label", 0, 300),
             ("random", 1, 720), ("ensemble", 1, 1800), ("no_label", 1, 300),
             ("random", 2, 3600)]
    cost = study_cost(RULES, [0, 1, 2, 3], walls, projected_seed_hours=2.0)
    assert cost.median_minutes == {"random": 12.0, "ensemble": 25.0, "no_label": 5.0}
    assert cost.missing == [("ensemble", 2), ("no_label", 2), ("random", 3), ("ensemble", 3),
                            ("no_label", 3)]
    assert cost.remaining_hours == pytest.approx((25 + 5 + 12 + 25 + 5) / 60)
    assert cost.measured_hours == pytest.approx((600 + 1200 + 300 + 720 + 1800 + 300 + 3600)
                                                / 3600)
    # complete seeds 0 and 1: (2100 + 2820) s = 1.3667 h against 2 x 2.0 h projected
    assert cost.ratio == pytest.approx(4920 / 3600 / 4.0)
    assert cost.n_archived == 7


def test_a_rule_never_archived_takes_the_projection_of_a_seed_shared_among_the_rules():
    walls = [("random", 0, 1800), ("ensemble", 0, 1800), ("no_label", 0, 1800),
             ("distance", 7, 60)]  # a seed outside the study: ignored
    # 'distance' has no unit in the study, so no seed is complete (no ratio) and each of its
    # two units is priced at 3.0 h / 4 rules; the others at their 30 min median
    cost = study_cost([*RULES, "distance"], [0, 1], walls, projected_seed_hours=3.0)
    assert cost.ratio is None
    assert "distance" not in cost.median_minutes
    assert cost.unmeasured_rules == ["distance"]
    assert cost.remaining_hours == pytest.approx(3 * 0.5 + 2 * 3.0 / 4)
    assert cost_lines(cost)[-1] == (
        "remaining: 5 units, ~3.0 h (each rule at its median; distance at the projection, no "
        "unit archived yet; next: distance seed 0)")
    complete = study_cost(RULES, [0, 1], walls, projected_seed_hours=3.0)
    assert complete.ratio == pytest.approx(0.5)  # seed 0: 1.5 h against 3.0 h projected
    assert complete.unmeasured_rules == []
    assert complete.remaining_hours == pytest.approx(1.5)


def test_the_printed_lines_name_the_next_unit_and_the_remaining_hours():
    walls = [("random", 0, 600), ("ensemble", 0, 1200), ("no_label", 0, 300)]
    cost = study_cost(RULES, [0, 1], walls, projected_seed_hours=1.0)
    lines = cost_lines(cost)
    assert lines[0] == ("archive: 3 units took 0.58 h; median per unit: random 10.0 min, "
                        "ensemble 20.0 min, no_label 5.0 min")
    assert lines[1] == ("measured / projected over the complete seeds: 0.58x (projection "
                        "1.00 h per seed)")
    assert lines[2] == "remaining: 3 units, ~0.6 h (each rule at its median; next: random seed 1)"
    assert cost_lines(study_cost(RULES, [0], walls, 1.0))[-1] == (
        "remaining: none (every unit is archived)")
    assert cost_lines(study_cost(RULES, [0], [], 1.0)) == [
        "archive: no unit yet; the projection above is all there is"]
