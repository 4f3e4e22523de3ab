"""Paired comparisons over seeds against scipy and hand values; verdicts follow the interval."""

import math

import numpy as np
import pytest
from scipy.stats import t, ttest_rel, wilcoxon

from gmdbench.evaluation.paired import (
    adjust_for_multiplicity,
    first_reaching,
    paired_comparison,
    trapezoid_mean,
)


def test_trapezoid_mean_is_the_area_over_the_label_range():
    # (0, 1) -> (10, 0) -> (20, 0): area 5 + 0 over 20 labels
    assert trapezoid_mean([0, 10, 20], [1.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert trapezoid_mean([0], [0.3]) == 0.3


def test_first_reaching_is_at_or_below_the_target():
    assert first_reaching([0, 16, 32], [0.2, 0.1, 0.05], 0.1) == 16
    assert first_reaching([0, 16, 32], [0.2, 0.15, 0.12], 0.1) is None


def test_paired_comparison_matches_the_paired_t_test_and_its_interval():
    values = {0: 1.0, 1: 2.0, 2: 3.5, 3: 1.5}
    baseline = {0: 1.5, 1: 2.1, 2: 3.9, 3: 1.6, 9: 0.0}  # seed 9 has no partner: left out
    result = paired_comparison(values, baseline)
    differences = np.array([-0.5, -0.1, -0.4, -0.1])
    assert result["seeds"] == [0, 1, 2, 3] and result["n"] == 4
    assert result["mean_difference"] == pytest.approx(differences.mean())
    half = t.ppf(0.975, 3) * differences.std(ddof=1) / 2
    assert result["ci"] == pytest.approx([differences.mean() - half, differences.mean() + half])
    assert result["t_test_p"] == pytest.approx(
        ttest_rel([1.0, 2.0, 3.5, 1.5], [1.5, 2.1, 3.9, 1.6]).pvalue)
    assert result["wilcoxon_p"] is None  # fewer than 6 seeds
    assert result["verdict"] == ("lower" if differences.mean() + half < 0 else
                                 "not distinguishable")


def test_the_same_mean_difference_is_decided_only_with_enough_seeds():
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=1.0, size=40)
    few = paired_comparison({i: -0.5 + noise[i] for i in range(3)}, dict.fromkeys(range(3), 0))
    many = paired_comparison({i: -0.5 + noise[i] for i in range(40)},
                             dict.fromkeys(range(40), 0))
    assert few["verdict"] == "not distinguishable"
    assert few["seeds_needed"] is not None and few["seeds_needed"] > 3
    assert many["verdict"] == "lower"
    assert many["ci"][1] < 0
    assert many["wilcoxon_p"] < 0.05


def test_detectable_difference_shrinks_like_one_over_root_n():
    a = paired_comparison({i: v for i, v in enumerate([0.0, 1.0, 2.0, 1.0, 0.0, 2.0])},
                          dict.fromkeys(range(6), 0.0))
    expected = (t.ppf(0.975, 5) + t.ppf(0.8, 5)) * np.std([0, 1, 2, 1, 0, 2], ddof=1) \
        / math.sqrt(6)
    assert a["detectable_difference"] == pytest.approx(expected)


def test_paired_comparison_edges_by_hand():
    """One seed: no interval; equal shifts: a verdict without an interval (either sign, or
    none); a higher rule is called higher; Wilcoxon and the seeds needed are scipy's and the
    smallest n whose detectable difference reaches the observed one."""
    one = paired_comparison({0: 1.0}, {0: 2.0})
    assert one["n"] == 1 and one["mean_difference"] == -1.0 and one["ci"] is None
    assert one["verdict"] == "not distinguishable" and one["t_test_p"] is None
    empty = paired_comparison({0: 1.0}, {1: 2.0})
    assert empty["n"] == 0 and empty["mean_difference"] is None
    for shift, verdict in ((-0.2, "lower"), (0.3, "higher"), (0.0, "not distinguishable")):
        same = paired_comparison({i: 1.0 + shift for i in range(4)}, dict.fromkeys(range(4), 1.0))
        assert same["verdict"] == verdict
        assert same["ci"] == pytest.approx([shift, shift]) and same["t_test_p"] is None
    differences = [0.5, 0.9, 0.4, 1.2, 0.7, 0.2, 0.8]
    higher = paired_comparison(dict(enumerate(differences)), dict.fromkeys(range(7), 0.0),
                               level=0.9)
    half = t.ppf(0.95, 6) * np.std(differences, ddof=1) / math.sqrt(7)
    assert higher["ci"] == pytest.approx([np.mean(differences) - half,
                                          np.mean(differences) + half])
    assert higher["verdict"] == "higher" and higher["level"] == 0.9
    assert higher["wilcoxon_p"] == pytest.approx(wilcoxon(differences).pvalue)
    sd = np.std(differences, ddof=1)

    def detectable(n):
        return (t.ppf(0.95, n - 1) + t.ppf(0.8, n - 1)) * sd / math.sqrt(n)

    needed = higher["seeds_needed"]
    assert detectable(needed) <= np.mean(differences) < detectable(needed - 1) or needed == 2
    assert higher["detectable_difference"] == pytest.approx(detectable(7))
    six = paired_comparison(dict(enumerate(differences[:6])), dict.fromkeys(range(6), 0.0))
    assert six["wilcoxon_p"] == pytest.approx(wilcoxon(differences[:6]).pvalue)  # 6 suffice
    # a difference far above its spread: two seeds would already detect it
    clear = paired_comparison({0: 10.0, 1: 10.1, 2: 9.9}, dict.fromkeys(range(3), 0.0))
    assert clear["seeds_needed"] == 2 and clear["verdict"] == "higher"


def test_trapezoid_mean_over_a_range_that_does_not_start_at_zero():
    # (10, 1) -> (20, 0.5) -> (40, 0): area 7.5 + 5 = 12.5 over 30 labels
    assert trapezoid_mean([10, 20, 40], [1.0, 0.5, 0.0]) == pytest.approx(12.5 / 30)
    with pytest.raises(ValueError):
        first_reaching([0, 16], [0.2], 0.1)  # a curve and its labels must pair up


def test_first_reaching_counts_a_value_below_the_target_not_only_equal_to_it():
    assert first_reaching([0, 16, 32], [0.2, 0.05, 0.01], 0.1) == 16


def test_two_seeds_already_give_an_interval_and_five_no_wilcoxon():
    two = paired_comparison({0: 1.0, 1: 2.0}, {0: 0.0, 1: 0.0})
    half = t.ppf(0.975, 1) * np.std([1.0, 2.0], ddof=1) / math.sqrt(2)
    assert two["ci"] == pytest.approx([1.5 - half, 1.5 + half])
    assert two["t_test_p"] == pytest.approx(ttest_rel([1.0, 2.0], [0.0, 0.0]).pvalue)
    five = paired_comparison(dict(enumerate([0.5, 0.9, 0.4, 1.2, 0.7])), dict.fromkeys(range(5), 0))
    assert five["wilcoxon_p"] is None and five["t_test_p"] is not None


def test_wilcoxon_is_computed_whatever_the_sign_of_the_differences():
    differences = [-0.5, -0.9, -0.4, -1.2, -0.7, -0.2, -0.8]
    result = paired_comparison(dict(enumerate(differences)), dict.fromkeys(range(7), 0.0))
    assert result["wilcoxon_p"] == pytest.approx(wilcoxon(differences).pvalue)
    assert result["verdict"] == "lower"


def test_a_positive_mean_whose_interval_holds_zero_is_not_called_higher():
    result = paired_comparison({0: 1.0, 1: -0.5, 2: 0.4}, dict.fromkeys(range(3), 0.0))
    assert result["mean_difference"] > 0 and result["ci"][0] < 0 < result["ci"][1]
    assert result["verdict"] == "not distinguishable"


def test_a_fifty_percent_interval_uses_the_quartile_of_t():
    """Level 0.5 puts the interval at t's 75th percentile, which tells 1 - (1 - level) apart
    from a level that is only right above one half."""
    differences = [0.2, -0.1, 0.4, 0.3]
    result = paired_comparison(dict(enumerate(differences)), dict.fromkeys(range(4), 0.0),
                               level=0.5)
    sd = np.std(differences, ddof=1)
    half = t.ppf(0.75, 3) * sd / 2
    assert result["ci"] == pytest.approx([np.mean(differences) - half,
                                          np.mean(differences) + half])
    assert result["detectable_difference"] == pytest.approx(
        (t.ppf(0.75, 3) + t.ppf(0.8, 3)) * sd / 2)


def test_the_seeds_needed_search_stops_at_its_cap_and_not_before():
    """A difference whose detection needs exactly MAX_SEEDS seeds is found; one that needs one
    more is reported as None (the search gives up at the cap)."""
    from gmdbench.evaluation.paired import MAX_SEEDS

    assert MAX_SEEDS == 1000
    sd = math.sqrt(2.0)  # differences m + 1 and m - 1

    def detectable(n):
        return (t.ppf(0.975, n - 1) + t.ppf(0.8, n - 1)) * sd / math.sqrt(n)

    for needed, expected in ((MAX_SEEDS, MAX_SEEDS), (MAX_SEEDS + 1, None)):
        mean = (detectable(needed) + detectable(needed - 1)) / 2
        result = paired_comparison({0: mean + 1.0, 1: mean - 1.0}, {0: 0.0, 1: 0.0})
        assert result["seeds_needed"] == expected


SPREAD = {"n": 5, "ci": [-1.0, 1.0]}  # interval fields a tested row carries


def test_verdicts_are_adjusted_over_the_table_by_benjamini_hochberg():
    """Hand-worked Benjamini-Hochberg: p (0.01, 0.04, 0.03, 0.20) of m = 4 sort to 0.01, 0.03,
    0.04, 0.20; m p_(i) / i gives 0.04, 0.06, 0.0533, 0.20 and the running minimum from the
    top 0.04, 0.0533, 0.0533, 0.20. A row whose own interval excludes 0 (p 0.03, 0.04) is not
    called once adjusted; Holm or Bonferroni would give other numbers (0.04 -> 0.06, 0.08)."""
    rows = [{"t_test_p": p, "level": 0.95, "verdict": verdict, **SPREAD} for p, verdict in
            ((0.01, "lower"), (0.04, "higher"), (0.03, "lower"),
             (0.20, "not distinguishable"))]
    # equal shifts: no test, an interval of no width
    untested = {"t_test_p": None, "level": 0.95, "verdict": "lower", "n": 5, "ci": [-0.5, -0.5]}
    adjust_for_multiplicity([*rows, untested])
    assert [row["adjusted_p"] for row in rows] == pytest.approx([0.04, 0.16 / 3, 0.16 / 3,
                                                                 0.20])
    assert [row["verdict"] for row in rows] == ["lower", "not distinguishable",
                                                "not distinguishable", "not distinguishable"]
    assert [row["unadjusted_verdict"] for row in rows] == ["lower", "higher", "lower",
                                                           "not distinguishable"]
    assert untested["adjusted_p"] is None and untested["verdict"] == "lower"
    alone = [{"t_test_p": 0.03, "level": 0.95, "verdict": "lower", **SPREAD}]
    adjust_for_multiplicity(alone)  # a family of one: nothing to adjust
    assert alone[0]["adjusted_p"] == pytest.approx(0.03) and alone[0]["verdict"] == "lower"
    loose = [{"t_test_p": 0.06, "level": 0.9, "verdict": "lower", **SPREAD},
             {"t_test_p": 0.5, "level": 0.9, "verdict": "not distinguishable", **SPREAD}]
    adjust_for_multiplicity(loose)  # decided at the comparisons' own level (0.06 * 2 > 0.1)
    assert loose[0]["adjusted_p"] == pytest.approx(0.12)
    assert loose[0]["verdict"] == "not distinguishable"
    # significance is p < 1 - level: at a 75% level p = 0.25 exactly is not called; at 30%
    # (alpha 0.7, where 1 - level and 1 % level part) p = 0.5 is
    edge = [{"t_test_p": 0.25, "level": 0.75, "verdict": "lower", **SPREAD}]
    adjust_for_multiplicity(edge)
    assert edge[0]["verdict"] == "not distinguishable"
    wide = [{"t_test_p": 0.5, "level": 0.3, "verdict": "higher", **SPREAD}]
    adjust_for_multiplicity(wide)
    assert wide[0]["verdict"] == "higher"



def test_adjusted_intervals_widen_to_the_false_coverage_level_and_match_the_verdicts():
    """Benjamini-Yekutieli's FCR intervals: with R of m rows called, each row's t interval at
    1 - max(R, 1) alpha / m. A clear shift, a marginal one and none over 5 paired seeds:
    BH calls only the clear one (R = 1, m = 3), so the intervals are at 1 - 0.05 / 3; the
    marginal row's own 95% interval excludes 0, its adjusted one does not."""
    noise = [0.3, -0.2, 0.1, -0.25, 0.05]
    rows = [paired_comparison({s: shift + e for s, e in enumerate(noise)},
                              dict.fromkeys(range(5), 0.0))
            for shift in (-2.0, -0.3, 0.0)]
    clear, marginal, none = rows
    assert clear["verdict"] == marginal["verdict"] == "lower" and marginal["t_test_p"] > 0.05 / 1.5
    untested = paired_comparison({0: 1.0, 1: 1.0}, {0: 0.0, 1: 0.0})  # no spread: no test
    adjust_for_multiplicity([*rows, untested])
    assert [row["verdict"] for row in rows] == ["lower", "not distinguishable",
                                                "not distinguishable"]
    sd = float(np.std(noise, ddof=1))
    for row, shift in zip(rows, (-2.0, -0.3, 0.0), strict=True):
        assert row["adjusted_level"] == pytest.approx(1 - 0.05 / 3)
        half = t.ppf(1 - 0.05 / 6, 4) * sd / math.sqrt(5)
        mean = shift + float(np.mean(noise))
        assert row["adjusted_ci"] == pytest.approx([mean - half, mean + half])
    assert clear["adjusted_ci"][1] < 0  # called: excludes 0
    assert marginal["ci"][1] < 0 < marginal["adjusted_ci"][1]  # its own excludes, adjusted not
    assert none["adjusted_ci"][0] < 0 < none["adjusted_ci"][1]
    assert untested["adjusted_ci"] == untested["ci"] and untested["adjusted_level"] is None
    # two called of three: the level is 1 - 2 alpha / m
    two = [paired_comparison({s: shift + e for s, e in enumerate(noise)},
                             dict.fromkeys(range(5), 0.0)) for shift in (-2.0, -1.5, 0.0)]
    adjust_for_multiplicity(two)
    assert [row["verdict"] for row in two][:2] == ["lower", "lower"]
    assert two[0]["adjusted_level"] == pytest.approx(1 - 2 * 0.05 / 3)
    # none called: the level is still that of one call, 1 - alpha / m, and finite
    quiet = [paired_comparison({s: shift + e for s, e in enumerate(noise)},
                               dict.fromkeys(range(5), 0.0)) for shift in (-0.1, 0.0)]
    adjust_for_multiplicity(quiet)
    assert all(row["verdict"] == "not distinguishable" for row in quiet)
    assert quiet[0]["adjusted_level"] == pytest.approx(1 - 0.05 / 2)
    assert all(np.isfinite(row["adjusted_ci"]).all() for row in quiet)


def test_adjusted_intervals_at_an_even_seed_count_and_a_low_level():
    """n = 6 (dof 5, where n ^ 1 would be 7) and a 30% level (alpha 0.7): the interval is
    still the row's t interval at 1 - max(R, 1) alpha / m. Where that level is above 0.5,
    1 % level equals 1 - level; a family of one keeps the level at 0.3, where they part
    (0.1 against 0.7)."""
    noise = [0.3, -0.2, 0.1, -0.25, 0.05, 0.15]
    row = paired_comparison({s: -1.0 + e for s, e in enumerate(noise)},
                            dict.fromkeys(range(6), 0.0), level=0.3)
    other = paired_comparison({s: e for s, e in enumerate(noise)},
                              dict.fromkeys(range(6), 0.0), level=0.3)
    adjust_for_multiplicity([row, other])
    called = sum(r["verdict"] != "not distinguishable" for r in (row, other))
    level = 1 - max(called, 1) * 0.7 / 2
    assert row["adjusted_level"] == pytest.approx(level)
    sd, mean = float(np.std(noise, ddof=1)), -1.0 + float(np.mean(noise))
    half = t.ppf(1 - (1 - level) / 2, 5) * sd / math.sqrt(6)
    assert row["adjusted_ci"] == pytest.approx([mean - half, mean + half])
    alone = paired_comparison({s: -1.0 + e for s, e in enumerate(noise)},
                              dict.fromkeys(range(6), 0.0), level=0.3)
    adjust_for_multiplicity([alone])  # m = 1, R = 1: the adjusted level is the row's own
    assert alone["adjusted_level"] == pytest.approx(0.3)
    assert alone["adjusted_ci"] == pytest.approx(alone["ci"])
