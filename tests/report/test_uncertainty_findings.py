"""The uncertainty findings are decided from the summaries they are given: counts, spans and
sign tests move with the numbers (hand-made summaries, no model)."""
import pytest
from scipy import stats

from gmdbench.report.uncertainty import sign_test, uncertainty_findings


def _summary(pooled: float, baseline: float, within: float, worst: float,
             raw: float = 0.3, conformal: float = 0.6) -> dict:
    """One configuration's summary, with only the keys the findings read."""
    per_group = {"A": within - 0.3, "B": within, "C": within + 0.1}
    ood = {"signals": {"ensemble_force_std": {"spearman": pooled,
                                              "within_molecule": {"median": within,
                                                                  "groups": 6,
                                                                  "per_group": per_group}},
                       "force_deviation_max": {"spearman": pooled,
                                               "within_molecule": {"median": worst,
                                                                   "groups": 6}}},
           "baselines": {"inverse_atoms": {"spearman": baseline - 0.1},
                         "molecule_mean_force_std": {"spearman": baseline}}}
    calibration = {"members": 3, "expected_within_1_sigma": 0.52, "variance_scale": 5.0,
                   "splits": {"ood_test": {"within_1_sigma": raw,
                                           "recalibrated_within_1_sigma": 0.9,
                                           "conformal_within_0.68": conformal,
                                           "conformal_within_0.95": 0.9},
                              "id_test": {"conformal_within_0.68": 0.68}}}
    return {"signals": ["ensemble_force_std"], "baselines": ["molecule_mean_force_std"],
            "calibration": calibration, "splits": {"ood_test": ood}}


def test_sign_test_is_the_exact_two_sided_binomial():
    assert sign_test(13, 13) == pytest.approx(2 * 0.5 ** 13)
    assert sign_test(1, 13) == pytest.approx(2 * 14 * 0.5 ** 13)  # 0 or 1, either tail
    assert sign_test(5, 13) == pytest.approx(stats.binomtest(5, 13).pvalue)
    assert sign_test(2, 4) == pytest.approx(1.0)


def test_findings_count_and_test_what_the_summaries_say():
    summaries = [_summary(0.9, 0.8, 0.5, 0.3), _summary(0.85, 0.9, 0.4, 0.2),
                 _summary(0.88, 0.7, 0.6, 0.7, raw=0.6, conformal=0.7),
                 _summary(0.8, 0.75, 0.5, 0.4),
                 # ties count for neither side: signal = baseline, worst = mean, coverage at
                 # the calibrated ensemble's 0.52 and conformal at exactly 0.68
                 _summary(0.8, 0.8, 0.5, 0.5, raw=0.52, conformal=0.68)]
    lines = uncertainty_findings(summaries)
    first = lines[0]
    assert "Over 5 configurations the ensemble_force_std reaches a pooled OOD Spearman of " \
        "0.80 to 0.90; a molecule-only baseline (constant within a molecule) reaches 0.70 to " \
        "0.90, and the signal beats the better baseline in 3 of 5 (sign test p = 1;" in first
    assert "Within a molecule its median Spearman is 0.40 to 0.60 (over 6 molecules each" in first
    # per molecule: each median - 0.3, itself and + 0.1; the lowest is 0.4 - 0.3
    assert "correlated MD snapshots); above 0 in 15 of 15 (configuration, molecule) pairs, the " \
        "lowest 0.10: that" in first
    low = uncertainty_findings([_summary(0.9, 0.8, 0.3, 0.3), _summary(0.9, 0.8, 0.2, 0.3)])[0]
    # 0.3 - 0.3 = 0 exactly is not above 0; 0.2 - 0.3 is below
    assert "above 0 in 4 of 6 (configuration, molecule) pairs, the lowest -0.10" in low
    worst = lines[1]
    assert "better than the mean spread in 1 of 5 configurations (sign test p = 0.38; " \
        "medians 0.20 to 0.70)" in worst
    raw = next(line for line in lines if "over-confident" in line)
    assert "below that in 3 of 5 (sign test p = 1)." in raw
    conformal = next(line for line in lines if "conformal" in line)
    assert "(3 of 5 short of 0.68, sign test p = 1;" in conformal
    # every configuration over-confident: no longer a coin's count
    raw = next(line for line in uncertainty_findings([_summary(0.9, 0.8, 0.5, 0.3)] * 8)
               if "over-confident" in line)
    assert f"below that in 8 of 8 (sign test p = {2 * 0.5 ** 8:.2g})." in raw
