"""The committed uncertainty numbers (reference/uncertainty, issue 28), recomputed from the
committed predictions with numpy and scipy alone: the within-molecule Spearman, the molecule-only
baseline and the recalibrated (split-conformal) coverage. Independent of gmdbench.evaluation, so
a definition that drifted in the code fails here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from gmdbench.pipeline.uncertainty import archive_uncertainty

pytestmark = pytest.mark.archive

ARCHIVE = Path(__file__).resolve().parents[2] / "reference"
SUMMARIES = sorted((ARCHIVE / "uncertainty").glob("*/uncertainty.json"))


def _ensemble(run_dirs: list[str], split: str) -> dict[str, np.ndarray]:
    """Members' forces from the committed predictions: mean, sample sigma, frame keys."""
    loaded = []
    for name in run_dirs:
        run_dir = ARCHIVE / "runs" / name
        with np.load(run_dir / f"predictions_{split}.npz") as data:
            arrays = {name: data[name] for name in data.files}
        if "labels" in arrays:  # compact form: labels in a shared file
            with np.load(run_dir / str(arrays.pop("labels"))) as labels:
                arrays = {**{n: labels[n] for n in labels.files}, **arrays}
        loaded.append(arrays)
    forces = np.stack([a["forces"].astype(np.float64) for a in loaded])
    first = loaded[0]
    return {"mean": forces.mean(axis=0), "sigma": forces.std(axis=0, ddof=1),
            "reference": first["forces_reference"], "n_atoms": first["n_atoms"],
            "smiles": first["smiles"], "trajectory_id": first["trajectory_id"],
            "frame": first["frame"]}


def _per_frame_mean(values: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    ends = np.cumsum(n_atoms)
    return np.array([values[end - n:end].mean() for n, end in zip(n_atoms, ends, strict=True)])


def test_the_archive_has_uncertainty_summaries():
    assert SUMMARIES, "reference/uncertainty is empty: run `gmd reference-table uncertainty`"


@pytest.mark.parametrize("path", SUMMARIES, ids=[p.parent.name for p in SUMMARIES])
def test_within_molecule_spearman_and_baseline_recomputed(path: Path):
    summary = json.loads(path.read_text())
    data = _ensemble(summary["run_dirs"], "ood_test")
    error = _per_frame_mean(np.abs(data["mean"] - data["reference"]).mean(axis=1),
                            data["n_atoms"])
    spread = _per_frame_mean(np.sqrt((data["sigma"] ** 2).mean(axis=1)), data["n_atoms"])
    rhos = [spearmanr(spread[data["smiles"] == m], error[data["smiles"] == m]).statistic
            for m in np.unique(data["smiles"])]
    stored = summary["splits"]["ood_test"]["signals"]["ensemble_force_std"]
    assert stored["within_molecule"]["median"] == pytest.approx(float(np.median(rhos)), abs=1e-9)
    assert stored["spearman"] == pytest.approx(spearmanr(spread, error).statistic, abs=1e-9)
    baseline = summary["splits"]["ood_test"]["baselines"]["inverse_atoms"]["spearman"]
    assert baseline == pytest.approx(spearmanr(1 / data["n_atoms"], error).statistic, abs=1e-9)


@pytest.mark.parametrize("path", SUMMARIES, ids=[p.parent.name for p in SUMMARIES])
def test_recalibrated_coverage_recomputed(path: Path):
    summary = json.loads(path.read_text())
    calibration = summary["calibration"]
    assert calibration["fitted_on"] == "id_test, later half in time of each trajectory"
    id_data = _ensemble(summary["run_dirs"], "id_test")
    fit = np.zeros(len(id_data["frame"]), dtype=bool)
    for trajectory in np.unique(id_data["trajectory_id"]):
        inside = id_data["trajectory_id"] == trajectory
        fit |= inside & (id_data["frame"] >= np.median(id_data["frame"][inside]))
    rows = np.repeat(fit, id_data["n_atoms"])
    scores = np.sort(np.abs(id_data["mean"] - id_data["reference"])[rows].ravel()
                     / id_data["sigma"][rows].ravel())
    factor = scores[math.ceil((scores.size + 1) * 0.68) - 1]
    assert calibration["conformal_factor"]["0.68"] == pytest.approx(factor, rel=1e-9)
    scale = math.sqrt(np.mean(scores ** 2))
    assert calibration["variance_scale"] == pytest.approx(scale, rel=1e-9)
    ood = _ensemble(summary["run_dirs"], "ood_test")
    inside = np.abs(ood["mean"] - ood["reference"]) <= factor * ood["sigma"]
    assert calibration["splits"]["ood_test"]["conformal_within_0.68"] == pytest.approx(
        float(inside.mean()), abs=1e-12)


def test_committed_uncertainty_readme_is_what_the_archive_rebuilds(tmp_path):
    archive_uncertainty(ARCHIVE, tmp_path)
    committed = ARCHIVE / "uncertainty" / "README.md"
    assert (tmp_path / "README.md").read_text() == committed.read_text(), \
        f"{committed} is stale: run `gmd reference-table uncertainty` and commit"


AL_STUDIES = sorted((ARCHIVE / "active-learning").glob("*/active_learning.json"))


@pytest.mark.parametrize("path", AL_STUDIES, ids=[p.parent.name for p in AL_STUDIES])
def test_paired_test_recomputed_from_the_committed_curve(path: Path):
    """Each rule against random and the no-label control, seed by seed, from the committed
    curve (curve.json; for a study archive still being filled, its units of the seeds the
    interim report names) with numpy and scipy alone."""
    from scipy.stats import t, ttest_rel

    summary = json.loads(path.read_text())
    if (path.parent / "curve.json").exists():
        curve = json.loads((path.parent / "curve.json").read_text())
    else:  # interim: the units of the complete seeds, every rule of each
        assert "Interim report" in summary["note"]
        curve = [point for seed in summary["config"]["seeds"]
                 for rule in summary["config"]["rules"]
                 for point in json.loads((path.parent / "units" / f"{rule}-seed{seed}.json")
                                         .read_text())["points"]]
    assert summary["comparisons"], f"{path} has no paired comparisons: rerun active-learn-report"

    def area(rule: str, seed: int) -> float:
        """Mean OOD force MAE over the rounds (the control adds no labels, so not over labels;
        for a rule adding a batch a round the two are the same mean)."""
        points = sorted((p for p in curve if p["rule"] == rule and p["seed"] == seed),
                        key=lambda p: p["round"])
        rounds = np.array([p["round"] for p in points], dtype=float)
        ood = np.array([p["ood_force_mae"] for p in points])
        return float(((ood[1:] + ood[:-1]) / 2 * np.diff(rounds)).sum()
                     / (rounds[-1] - rounds[0]))

    seeds = sorted({p["seed"] for p in curve})
    checked = 0
    for rule, tests in summary["comparisons"].items():
        for other in ("random", "no_label"):
            if f"area vs {other}" not in tests:
                continue
            checked += 1
            mine = [area(rule, s) for s in seeds]
            theirs = [area(other, s) for s in seeds]
            assert all(np.isfinite(mine + theirs)), (rule, other)
            stored = tests[f"area vs {other}"]
            differences = np.array(mine) - np.array(theirs)
            assert stored["mean_difference"] == pytest.approx(differences.mean(), abs=1e-12)
            if len(seeds) < 2:  # an interim report over one seed: no interval, no test
                assert stored["ci"] is None and stored["t_test_p"] is None
                assert stored["verdict"] == "not distinguishable"
                continue
            assert stored["t_test_p"] == pytest.approx(ttest_rel(mine, theirs).pvalue,
                                                       rel=1e-9)
            half = t.ppf(0.975, len(seeds) - 1) * differences.std(ddof=1) / np.sqrt(len(seeds))
            assert stored["ci"] == pytest.approx([differences.mean() - half,
                                                  differences.mean() + half], rel=1e-9)
            excludes_zero = differences.mean() + half < 0 or differences.mean() - half > 0
            assert (stored["unadjusted_verdict"] != "not distinguishable") == excludes_zero
    assert checked, f"{path}: no rule was compared with random or the control"
    # the verdicts: Benjamini-Hochberg over every tested row of the table, by hand
    family = [test for tests in summary["comparisons"].values() for test in tests.values()
              if test["t_test_p"] is not None]
    p = np.array([test["t_test_p"] for test in family])
    order = np.argsort(p)
    scaled = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    for test, value in zip(family, adjusted, strict=True):
        assert test["adjusted_p"] == pytest.approx(value, rel=1e-9)
        called = test["verdict"] != "not distinguishable"
        assert called == (value < 0.05 and test["unadjusted_verdict"] != "not distinguishable")
    # the false-coverage-rate intervals (Benjamini-Yekutieli): each row's t interval at
    # 1 - max(R, 1) 5% / m, which excludes 0 exactly where the row is called
    calls = sum(test["verdict"] != "not distinguishable" for test in family)
    level = 1 - max(calls, 1) * 0.05 / len(family)
    for test in family:
        dof = test["n"] - 1
        error = (test["ci"][1] - test["ci"][0]) / 2 / t.ppf(0.975, dof)
        half = t.ppf(1 - (1 - level) / 2, dof) * error
        mean = test["mean_difference"]
        assert test["adjusted_level"] == pytest.approx(level, rel=1e-12)
        assert test["adjusted_ci"] == pytest.approx([mean - half, mean + half], rel=1e-9)
        excludes = mean + half < 0 or mean - half > 0
        assert excludes == (test["verdict"] != "not distinguishable"), test
