"""The why-ratios analysis: factor fits and verdicts follow the numbers they are given."""

import dataclasses
import json
import math

import numpy as np
import pytest
from scipy import stats

from gmdbench.models.registry import model_config
from gmdbench.report.why_ratios import (
    PowerLaw,
    StudyRun,
    _fmt,
    _geometric_mean_ratio,
    contrast,
    curve_series,
    data_series,
    factor_effects,
    factor_of,
    finding_one_restated,
    fit_power_law,
    noise_band,
    pooled_log_spread,
    study_runs,
    why_ratios_section,
    within_noise,
)


def _run(model="mace", factor="central", trajectories=4, iid=0.01, ood=0.03, seed=0,
         size="small", split="trajectory", curve=None):
    return StudyRun(model=model, factor=factor, seed=seed, train_trajectories=trajectories,
                    frames_per_molecule=100 * trajectories, size=size, split=split,
                    id_mae=iid, ood_mae=ood, status="converged", curve=curve or [])


def _data_runs(trajectories, model="mace", central=False):
    """One run per size on ID = 0.04 t^-0.5 and OOD = 0.1 t^-0.2 (so OOD/ID ~ t^0.3); with
    ``central``, the 4-trajectory run is the central point, the others data-size points."""
    return [_run(model=model, trajectories=t, iid=0.04 * t ** -0.5, ood=0.1 * t ** -0.2,
                 factor="central" if central and t == 4 else "data size") for t in trajectories]


def _wobbly_data_runs():
    """Data-size points whose OOD errors wobble off the line (x1.0, x0.8, x1.3 at 1, 2 and 8
    trajectories): a large fitted ratio change whose slope interval still includes 0."""
    return [_run(trajectories=t, iid=0.04 * t ** -0.5, ood=0.1 * t ** -0.2 * wobble,
                 factor="data size") for t, wobble in ((1, 1.0), (2, 0.8), (8, 1.3))]


def test_power_law_recovers_a_known_exponent_and_refuses_too_few_points():
    x = [100, 200, 400, 800, 1600]
    law = fit_power_law(x, [2.0 * v ** -0.5 for v in x])
    assert law.slope == pytest.approx(-0.5) and law.slope_stderr == pytest.approx(0, abs=1e-9)
    assert law.at(1000) == pytest.approx(2.0 * 1000 ** -0.5)
    assert law.solve(2.0 * 10_000 ** -0.5) == pytest.approx(10_000)
    assert fit_power_law([1, 2], [1, 2]) is None  # two points: no fit with an error
    assert fit_power_law([4, 4, 4], [1, 2, 3]) is None  # one x


def test_factor_of_reads_the_resolved_config():
    small = model_config("schnet", {}, size="small").model_dump(exclude={"name"})
    paper = model_config("schnet", {}, size="paper").model_dump(exclude={"name"})
    base = {"model_options": small, "train_trajectories": 4}
    assert factor_of(base, small) == ("central", "small")
    assert factor_of({**base, "train_trajectories": 16}, small) == ("data size", "small")
    assert factor_of({**base, "split": "random-frames"}, small) == ("split protocol", "small")
    assert factor_of({**base, "model_options": paper}, small) == ("model size", "paper")


def _curve(ratios, iid=(0.05, 0.02, 0.012, 0.01)):
    return [{"epoch": 10 * k, "id_test_force_mae": i, "ood_test_force_mae": i * r}
            for k, (i, r) in enumerate(zip(iid, ratios, strict=True))]


def test_the_verdict_names_the_factor_that_moves_the_ratio_most():
    # ratio doubles over 16x data (slope 0.25); budget x1.2; paper size x1.1; random-frames x3
    runs = [_run(trajectories=t, iid=0.02 * (t / 4) ** -0.5, ood=0.02 * (t / 4) ** -0.25 * 3,
                 factor="central" if t == 4 else "data size") for t in (1, 2, 4, 8, 16)]
    runs[2].curve = _curve([2.0, 2.5, 2.4, 2.4])
    runs += [_run(factor="model size", size="paper", iid=0.01, ood=0.01 * 3 * 1.1),
             _run(factor="split protocol", split="random-frames", iid=0.004, ood=0.036)]
    effects = factor_effects(runs, "mace")
    assert effects["data size"][0] == pytest.approx(2.0, rel=1e-6)
    assert effects["training budget"][0] == pytest.approx(2.4 / 2.5)  # after the first tenth
    assert effects["model size"][0] == pytest.approx(1.1)
    assert effects["split protocol"][0] == pytest.approx(3.0)
    assert effects["model size"][1] == "paper / small size"
    assert effects["split protocol"][1] == "random-frames / trajectory split"
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    assert "- mace: split protocol moves the ratio most." in text
    # the same study where data moves the ratio 16x: the verdict follows
    steep = [_run(trajectories=t, iid=0.02 * (t / 4) ** -1.0, ood=0.06,
                  factor="central" if t == 4 else "data size") for t in (1, 2, 4, 8, 16)]
    text = "\n".join(why_ratios_section(steep + runs[5:], {}, {}, None, None, 18))
    assert "- mace: data size moves the ratio most." in text


def test_data_series_averages_central_seeds_and_predicts_at_the_authors_size():
    runs = _data_runs((1, 2, 4, 8, 16), central=True)
    runs.append(_run(trajectories=4, iid=0.04 * 4 ** -0.5, ood=0.1 * 4 ** -0.2, seed=1))
    series = data_series(runs, "mace")
    assert [p[4] for p in series.points] == [1, 1, 2, 1, 1]
    assert series.ratio_law.slope == pytest.approx(0.3)
    published = {"MACE": {"force_mae_id": "0.0028", "force_mae_ood": "0.0171"}}
    text = "\n".join(why_ratios_section(runs, published, {"mace": "MACE"}, None, None, 18))
    authors = 0.1 * 10 ** -0.2 / (0.04 * 10 ** -0.5)  # N = 1000 frames = 10 trajectories
    assert f"OOD/ID {authors:.2f}" in text and "(within the measured range)" in text
    needed = (0.0028 / 0.04) ** -2 * 100  # frames: ID = 0.04 (N/100)^-0.5
    assert f"N ≈ {needed:,.0f} frames per molecule" in text
    assert f"({needed / 1600:,.1f}x our largest)" in text


@pytest.mark.parametrize(("published_id", "frames", "where"), [
    (0.02, 400, "is reached within the measured range"),
    (0.05, 64, "is above our error at every measured size")])
def test_a_published_id_error_inside_or_above_our_range_is_not_called_an_extrapolation(
        published_id, frames, where):
    runs = _data_runs((1, 2, 4, 8, 16), central=True)
    published = {"MACE": {"force_mae_id": str(published_id), "force_mae_ood": "0.1"}}
    text = "\n".join(why_ratios_section(runs, published, {"mace": "MACE"}, None, None, 18))
    assert where in text and f"N ≈ {frames:,.0f} frames per molecule" in text
    assert "our largest" not in text


def test_finding_one_restated_counts_predictions_at_or_above_three():
    law = fit_power_law([0.01, 0.02, 0.04], [3.0, 3.0 * 2 ** -0.5, 1.5])  # slope -0.5
    published = {"A": {"force_mae_id": "0.0025", "force_mae_ood": "0.25"},
                 "B": {"force_mae_id": "0.04", "force_mae_ood": "0.08"}}
    text = finding_one_restated(law, published, {"a": "A", "b": "B"})
    assert "OOD/ID >= 3 for 1 of 2" in text
    # points on the line: an interval of no width, which both published ratios exceed
    assert f"A {3.0 * math.sqrt(0.01 / 0.0025):.1f} (95% CI 6.0 to 6.0; published 100.0)" \
        in text
    assert "The published ratio lies above the law's interval for 2 of 2 (A, B): for those, " \
        "something besides ID error" in text


def test_finding_one_restated_reads_each_published_ratio_against_the_laws_interval():
    law = fit_power_law([0.01, 0.015, 0.02, 0.04], [3.3, 2.2, 2.3, 1.4])  # off the line
    low, high = law.interval_at(0.0025)
    assert high / low > 1.5
    inside = {"A": {"force_mae_id": "0.0025", "force_mae_ood": repr(0.0025 * law.at(0.0025))}}
    text = finding_one_restated(law, inside, {"a": "A"})
    assert f"A {law.at(0.0025):.1f} (95% CI {low:.1f} to {high:.1f}; published " in text
    assert "No published ratio lies above the law's interval: ID error alone could account " \
        "for them; the interval is the fitted line's" in text
    for ood in (0.0025 * high * 1.01, 0.0025 * low * 0.5):  # just above; far below
        text = finding_one_restated(law, {"A": {"force_mae_id": "0.0025",
                                                "force_mae_ood": repr(ood)}}, {"a": "A"})
        assert ("lies above the law's interval for 1 of 1 (A)" in text) == (ood > 0.0025 * low)
        assert (", and below it for A;" in text) == (ood < 0.0025 * low)


def test_power_law_drops_unusable_points_and_reports_its_fit():
    """Points with x or y at or below zero, or not finite, cannot be on a log-log line: they
    are dropped before counting; three points are enough; r, n, the x range and the text are
    the fit's; a flat law never reaches another value."""
    x = [100, 200, 0, 400, -5, 800, 1600, 300, 3200, float("inf")]
    y = [1.0, 0.8, 0.5, float("nan"), 0.7, 0.5, 0.45, 0.0, float("inf"), 0.3]
    law = fit_power_law(x, y)
    kept_x, kept_y = [100, 200, 800, 1600], [1.0, 0.8, 0.5, 0.45]
    expected = stats.linregress(np.log10(kept_x), np.log10(kept_y))
    assert law.n == 4 and law.x_range == (100.0, 1600.0)
    assert law.slope == pytest.approx(expected.slope)
    assert law.slope_stderr == pytest.approx(expected.stderr)
    assert law.r == pytest.approx(expected.rvalue) and law.r < 0
    half = stats.t.ppf(0.975, 2) * expected.stderr  # n - 2 = 2 degrees of freedom
    assert law.slope_interval() == pytest.approx((expected.slope - half, expected.slope + half))
    assert law.text() == (f"{expected.slope:+.2f} (95% CI {expected.slope - half:+.2f} to "
                          f"{expected.slope + half:+.2f}; r = {expected.rvalue:+.2f}, n = 4)")
    assert fit_power_law([1, 2, 4], [3.0, 3.0, 3.0]).solve(2.0) == math.inf
    assert fit_power_law([1, 2, 4], [1.0, 2.0, 4.0]).slope == pytest.approx(1.0)


def test_seeds_average_ratios_geometrically_and_errors_arithmetically():
    """x2 and x8 average to x4 (not 5); ID and OOD errors are plain means; a contrast names
    its level and counts its seeds; the learning curve starts at the first point at or after
    a tenth of the last epoch."""
    central = [_run(seed=0, iid=0.01, ood=0.02, curve=_curve([1.0, 2.0, 2.0, 2.0])),
               _run(seed=1, iid=0.03, ood=0.24, curve=_curve([1.0, 3.0, 8.0, 8.0]))]
    split = [_run(factor="split protocol", split="random-frames", seed=s, iid=i, ood=o)
             for s, i, o in ((0, 0.01, 0.02), (1, 0.03, 0.24))]
    found = contrast(central + split, "mace", "split protocol")
    assert found.label == "random-frames" and found.other[3] == 2
    assert found.base[:3] == pytest.approx((0.02, 0.13, 4.0))
    assert contrast(central, "mace", "model size") is None
    curves = curve_series(central, "mace")
    assert curves.final_ratio == pytest.approx(4.0)  # sqrt(2 x 8)
    assert curves.early_ratio == pytest.approx(math.sqrt(2.0 * 3.0))  # epoch 10 of 30
    # a point exactly at a tenth of the last epoch (10 of 100) is kept
    boundary = [{**point, "epoch": epoch} for point, epoch in
                zip(_curve([1.0, 2.0, 3.0, 4.0]), (0, 10, 20, 100), strict=True)]
    assert curve_series([_run(curve=boundary)], "mace").early_ratio == pytest.approx(2.0)


def test_study_runs_read_metrics_configs_and_learning_curves(tmp_path):
    """A run's factor, trajectories and frames come from its config, its errors from the
    metrics rows, its status from the record, its size and curve from training.json (absent:
    none), and the runs come back central first."""
    small = model_config("schnet", {}, size="small").model_dump(exclude={"name"})
    curve = [{"epoch": 5, "id_test_force_mae": 0.02, "ood_test_force_mae": 0.05}]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "training.json").write_text(
        json.dumps({"n_parameters": 1234, "learning_curve": curve}))
    records = [
        {"run_id": "a", "model": "schnet", "seed": 0, "run_dir": str(tmp_path / "a"),
         "config": {"model_options": small, "train_trajectories": 16},
         "training": {"status": "capped"}},
        {"run_id": "b", "model": "schnet", "seed": 1, "run_dir": str(tmp_path / "b"),
         "config": {"model_options": small}}]
    metrics = [{"run_id": run, "split": split, "metric": "force_mae", "value": value}
               for run, split, value in (("a", "id_test", 0.01), ("a", "ood_test", 0.04),
                                         ("b", "id_test", 0.02), ("b", "ood_test", 0.05))]
    central, data = study_runs(records, metrics, frames_per_trajectory=100)
    assert (central.factor, central.train_trajectories, central.frames_per_molecule) == \
        ("central", 4, 400)
    assert (central.status, central.n_parameters, central.curve) == ("not recorded", None, [])
    assert (data.factor, data.train_trajectories, data.frames_per_molecule, data.seed) == \
        ("data size", 16, 1600, 0)
    assert (data.id_mae, data.ood_mae, data.ratio) == (0.01, 0.04, pytest.approx(4.0))
    assert (data.status, data.n_parameters, data.curve) == ("capped", 1234, curve)


def test_the_training_budget_starts_a_tenth_of_the_last_epoch_in_and_fits_the_ratio():
    # the tenth is of the last epoch (100 -> from epoch 10), not of the one before it
    points = [{**point, "epoch": epoch} for point, epoch in
              zip(_curve([1.0, 2.0, 3.0, 4.0]), (5, 10, 20, 100), strict=True)]
    assert curve_series([_run(curve=points)], "mace").early_ratio == pytest.approx(2.0)
    # along training OOD/ID = 0.1 ID^-0.5: the law has that slope
    ids = [0.04, 0.02, 0.01, 0.005]
    along = [{"epoch": 10 * k, "id_test_force_mae": i, "ood_test_force_mae": i * 0.1 * i ** -0.5}
             for k, i in enumerate(ids)]
    law = curve_series([_run(curve=along)], "mace").law
    assert law.slope == pytest.approx(-0.5) and law.n == 3  # epoch 0 is before the tenth


def _section_runs():
    """mace: two data sizes (no fit), one seed with a curve, a paper-size run; schnet: three
    sizes of 100-300 frames per molecule (the authors' 1000 lie beyond), two curves."""
    runs = [_run(trajectories=t, iid=0.02 / t, ood=0.05 / t, factor="central" if t == 4
                 else "data size", curve=_curve([2.0, 2.5, 2.5, 2.5]) if t == 4 else None)
            for t in (2, 4)]
    runs.append(_run(factor="model size", size="paper", iid=0.01, ood=0.033))
    runs += _data_runs((1, 2, 3), model="schnet")
    runs += [_run(model="schnet", trajectories=4, seed=s, iid=0.02, ood=0.05,
                  curve=_curve([2.0, 2.5, 2.5, 2.5])) for s in (0, 1)]
    runs[-1].status = "capped"
    runs[-2].status = "diverged"
    return runs


def test_the_section_counts_statuses_and_reports_every_model_and_contrast():
    runs = _section_runs()
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    assert "Status of the archived runs: 6 converged, 1 capped, 1 diverged." in text
    assert "- mace: fewer than three data sizes so far; no fit." in text
    assert "- schnet: ID ~ N^" in text  # after a model without a fit
    assert "At the authors' 1000 frames (beyond the measured range)" in text
    assert "- mace (1 seed): OOD/ID" in text and "- schnet (2 seeds): OOD/ID" in text
    base = runs[1]
    assert (f"| mace | model size | central | 1 | {base.id_mae:.4f} | {base.ood_mae:.4f} | "
            f"{base.ratio:.2f} |  |") in text
    assert f"| mace | model size | paper | 1 | 0.0100 | 0.0330 | 3.30 | x{3.3 / 2.5:.2f} |" in text


def test_the_reference_law_says_the_ratio_grows_only_when_its_slope_is_negative():
    falling = fit_power_law([0.01, 0.02, 0.04], [3.0, 3.0 * 2 ** -0.5, 1.5])
    rising = fit_power_law([0.01, 0.02, 0.04], [1.5, 1.5 * 2 ** 0.5, 3.0])
    grows = "the ratio grows as ID error falls (each seed is a point, and seeds of one " \
        "architecture lie close together, so the interval is narrower than one over " \
        "architectures would be)."
    assert grows in "\n".join(why_ratios_section([], {}, {}, falling, None, 18))
    text = "\n".join(why_ratios_section([], {}, {}, rising, None, 18))
    assert grows not in text and f"OOD/ID ~ ID^{rising.text()} (each seed is a point" in text
    # a falling slope whose interval reaches 0 shows no growth either
    loose = dataclasses.replace(falling, slope=-0.3, slope_stderr=0.05)  # n = 3: t = 12.7
    text = "\n".join(why_ratios_section([], {}, {}, loose, None, 18))
    assert grows not in text and f"OOD/ID ~ ID^{loose.text()} (each seed is a point" in text


def test_finding_one_counts_only_published_architectures_that_we_ran():
    law = fit_power_law([0.01, 0.02, 0.04], [3.0, 3.0 * 2 ** -0.5, 1.5])
    published = {"A": {"force_mae_id": "0.0025", "force_mae_ood": "0.25"},
                 "Z": {"force_mae_id": "0.001", "force_mae_ood": "0.2"}}
    text = finding_one_restated(law, published, {"a": "A", "y": "Y"})
    assert "OOD/ID >= 3 for 1 of 1 architectures" in text and "Z " not in text


def _fresh(text: str) -> str:
    """The same string as a new object, as JSON gives it back (a literal is interned, so an
    identity test would pass on literals and fail on the archive's records)."""
    return json.loads(json.dumps(text))


def test_runs_read_back_from_json_match_by_value_not_identity():
    runs = [*_section_runs(), _run(factor="split protocol", split="random-frames", iid=0.004,
                                   ood=0.02)]
    literal = why_ratios_section(runs, {}, {}, None, None, 18)
    assert "| mace | split protocol | random-frames | 1 | 0.0040 | 0.0200 | 5.00 |" in \
        "\n".join(literal)
    fresh = [dataclasses.replace(r, model=_fresh(r.model), factor=_fresh(r.factor),
                                 status=_fresh(r.status)) for r in runs]
    assert why_ratios_section(fresh, {}, {}, None, None, 18) == literal


def test_a_contrast_belongs_to_its_own_model_only():
    runs = _section_runs()  # only mace has a paper-size run; schnet sorts after mace
    assert contrast(runs, "schnet", "model size") is None
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    assert "| mace | model size | paper |" in text and "| schnet | model size" not in text


def test_solve_inverts_rising_and_falling_laws():
    assert fit_power_law([1, 2, 4], [1.0, 2.0, 4.0]).solve(8.0) == pytest.approx(8.0)
    assert fit_power_law([1, 2, 4], [4.0, 2.0, 1.0]).solve(0.5) == pytest.approx(8.0)


def test_numbers_are_written_with_their_digits_or_a_dash():
    assert [_fmt(None), _fmt(float("nan")), _fmt(float("inf"))] == ["-", "-", "-"]
    assert (_fmt(0.012345), _fmt(2.346, 2)) == ("0.0123", "2.35")


def test_three_points_at_two_distinct_sizes_are_enough_for_a_fit():
    law = fit_power_law([1, 1, 2], [1.0, 1.0, 2.0])
    assert law is not None and law.n == 3 and law.slope == pytest.approx(1.0)
    assert fit_power_law([2, 2, 2], [1.0, 2.0, 3.0]) is None


def test_the_data_table_lists_every_size_and_the_authors_size_below_the_range_is_beyond():
    runs = _data_runs((16, 32, 64))  # 1600-6400 frames per molecule, above the authors' 1000
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    for run in runs:
        assert (f"| mace | {run.frames_per_molecule} | 1 | {run.id_mae:.4f} | "
                f"{run.ood_mae:.4f} | {run.ratio:.2f} |") in text
    assert "At the authors' 1000 frames (beyond the measured range)" in text


def test_a_published_id_error_at_our_smallest_size_is_within_the_range_with_its_ratio():
    runs = _data_runs((1, 2, 4, 8, 16))
    law = data_series(runs, "mace").id_law
    target = law.at(100)
    assert law.solve(target) == 100.0  # an exact round trip: the range's edge itself is tested
    published = {"MACE": {"force_mae_id": repr(target), "force_mae_ood": repr(2.5 * target)}}
    text = "\n".join(why_ratios_section(runs, published, {"mace": "MACE"}, None, None, 18))
    assert "is reached within the measured range, at N ≈ 100 frames per molecule" in text
    assert "(published 2.5): the published ratio lies" in text


def test_a_flat_reference_law_does_not_say_the_ratio_grows():
    flat = fit_power_law([0.01, 0.02, 0.04], [2.0, 2.0, 2.0])
    assert flat.slope == 0
    text = "\n".join(why_ratios_section([], {}, {}, flat, None, 18))
    assert f"OOD/ID ~ ID^{flat.text()} (each seed is a point" in text and "grows" not in text


def test_the_section_shows_each_figure_only_when_it_is_given():
    runs = _section_runs()
    assert "![" not in "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    text = "\n".join(why_ratios_section(runs, {}, {}, None, "ratio.png", 18,
                                        curves_figure="curves.png"))
    assert "![OOD/ID against ID force MAE](ratio.png)" in text
    assert "![learning curves](curves.png)" in text
    empty = "\n".join(why_ratios_section([], {}, {}, None, "ratio.png", 18))
    assert "![OOD/ID against ID force MAE](ratio.png)" in empty and "(0 of 18)" in empty


@pytest.mark.parametrize("trajectories", [(4, 5, 10), (10, 20, 40)])
def test_the_authors_size_at_either_edge_of_the_measured_range_is_within_it(trajectories):
    runs = _data_runs(trajectories)  # 1000 frames per molecule is the last or the first size
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    assert "At the authors' 1000 frames (within the measured range)" in text


def test_fewer_train_trajectories_than_the_central_point_are_the_data_size_factor():
    small = model_config("schnet", {}, size="small").model_dump(exclude={"name"})
    for trajectories in (1, 2, 3, 5):
        assert factor_of({"model_options": small, "train_trajectories": trajectories},
                         small) == ("data size", "small")


def test_a_split_contrast_is_shown_without_a_model_size_one():
    runs = [_run(), _run(factor="split protocol", split="random-frames", iid=0.004, ood=0.02)]
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    assert "| mace | split protocol | random-frames | 1 | 0.0040 | 0.0200 | 5.00 | x1.67 |" in text


def test_a_flat_id_law_predicts_no_data_size_for_the_published_error():
    runs = [_run(trajectories=t, iid=0.02, ood=0.05 * t ** -0.2, factor="data size")
            for t in (1, 2, 4)]
    published = {"MACE": {"force_mae_id": "0.003", "force_mae_ood": "0.01"}}
    text = "\n".join(why_ratios_section(runs, published, {"mace": "MACE"}, None, None, 18))
    assert "- mace: ID ~ N^+0.00" in text and "The published ID error" not in text


def test_each_model_keeps_its_own_data_series_and_laws():
    runs = _section_runs()  # mace sorts before schnet and has data points of its own
    schnet = data_series(runs, "schnet")
    assert [p[0] for p in schnet.points] == [100, 200, 300, 400]
    assert [p[4] for p in schnet.points] == [1, 1, 1, 2]
    runs = _data_runs((1, 2, 4, 8))
    series = data_series(runs, "mace")
    assert (series.id_law.slope, series.ood_law.slope, series.ratio_law.slope) == (
        pytest.approx(-0.5), pytest.approx(-0.2), pytest.approx(0.3))


def test_a_model_without_a_curve_does_not_hide_the_next_models_curve():
    runs = [_run(), _run(model="schnet", curve=_curve([2.0, 2.5, 2.5, 2.5]))]
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    law = fit_power_law([0.02, 0.012, 0.01], [2.5, 2.5, 2.5])
    assert "- mace: no learning curve archived yet." in text
    assert "- mace: " not in text.split("### Verdict")[1]  # nothing measured for mace
    assert "- schnet: training budget moves the ratio most." in text
    assert f"- schnet (1 seed): OOD/ID 2.50 after the first tenth of training, 2.50 at the end; " \
        f"along training OOD/ID ~ ID^{law.text()}; the points of one curve are not " \
        "independent" in text


def test_points_at_or_below_zero_on_either_axis_are_dropped():
    assert fit_power_law([1, 2, 4, 8], [1.0, 2.0, 4.0, -1.0]).n == 3
    assert fit_power_law([1, 2, 4, -8], [1.0, 2.0, 4.0, 8.0]).n == 3


def test_a_prediction_of_exactly_three_counts_as_at_least_three():
    flat_three = PowerLaw(slope=0.0, slope_stderr=0.0, intercept=math.log10(3), r=0.0, n=3,
                          x_range=(0.01, 0.04))
    assert flat_three.at(0.0025) == 3.0
    published = {"A": {"force_mae_id": "0.0025", "force_mae_ood": "0.25"}}
    assert "OOD/ID >= 3 for 1 of 1" in finding_one_restated(flat_three, published, {"a": "A"})


def test_contrasts_take_their_model_and_factor_by_value():
    runs = [_run(), _run(model="schnet"),
            _run(model="schnet", factor="model size", size="paper", iid=0.01, ood=0.05)]
    assert contrast(runs, "mace", "model size") is None  # schnet sorts after mace
    found = contrast(runs, _fresh("schnet"), _fresh("model size"))
    assert found.label == "paper" and found.effect == pytest.approx(5.0 / 3.0)


def test_the_verdict_lists_the_factors_not_measured_yet():
    runs = [_run(), _run(factor="model size", size="paper", iid=0.01, ood=0.05)]
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    assert "Not measured yet: data size, training budget, split protocol." in text
    runs = _data_runs((1, 2, 4, 8), central=True)
    runs[2].curve = _curve([2.0, 2.5, 2.4, 2.4])
    runs += [_run(factor="model size", size="paper", iid=0.01, ood=0.033),
             _run(factor="split protocol", split="random-frames", iid=0.004, ood=0.036)]
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    assert "- mace: " in text and "Not measured yet" not in text
    # the data-size effect is the ratio law's change over the range, 8^0.3, not its floor
    assert factor_effects(runs, "mace")["data size"][0] == pytest.approx(8 ** 0.3)


def test_a_published_id_error_at_our_largest_size_is_within_the_range():
    runs = _data_runs((1, 10, 100))
    law = data_series(runs, "mace").id_law
    target = law.at(10000)
    assert law.solve(target) == 10000.0  # an exact round trip at the range's upper edge
    published = {"MACE": {"force_mae_id": repr(target), "force_mae_ood": repr(2.5 * target)}}
    text = "\n".join(why_ratios_section(runs, published, {"mace": "MACE"}, None, None, 18))
    assert "is reached within the measured range, at N ≈ 10,000 frames per molecule" in text


def test_an_id_error_that_rises_with_data_predicts_no_size_for_the_published_error():
    runs = [_run(trajectories=t, iid=0.01 * t ** 0.3, ood=0.05, factor="data size")
            for t in (1, 2, 4)]
    published = {"MACE": {"force_mae_id": "0.003", "force_mae_ood": "0.01"}}
    text = "\n".join(why_ratios_section(runs, published, {"mace": "MACE"}, None, None, 18))
    assert "- mace: ID ~ N^+0.30" in text and "The published ID error" not in text


def test_a_prediction_between_two_and_three_is_not_counted_as_three():
    flat = PowerLaw(slope=0.0, slope_stderr=0.0, intercept=math.log10(2.5), r=0.0, n=3,
                    x_range=(0.01, 0.04))
    published = {"A": {"force_mae_id": "0.0025", "force_mae_ood": "0.25"}}
    assert "OOD/ID >= 3 for 0 of 1" in finding_one_restated(flat, published, {"a": "A"})


def test_a_config_read_back_from_json_names_its_split_by_value():
    small = model_config("schnet", {}, size="small").model_dump(exclude={"name"})
    config = json.loads(json.dumps({"model_options": small, "train_trajectories": 4,
                                    "split": "trajectory"}))
    assert factor_of(config, small) == ("central", "small")


def test_a_slope_interval_uses_the_t_quantile_of_its_degrees_of_freedom():
    """At three points one degree of freedom is left: t = 12.71, not 1.96 and not 1, so a
    small standard error can still leave a trend unshown; more points narrow it."""
    three = PowerLaw(slope=0.14, slope_stderr=0.04, intercept=0.0, r=0.96, n=3,
                     x_range=(100.0, 400.0))
    assert three.slope_interval() == pytest.approx(
        (0.14 - 12.7062 * 0.04, 0.14 + 12.7062 * 0.04), rel=1e-5)
    assert not three.trend_shown
    five = dataclasses.replace(three, n=5)  # t(0.975, 3) = 3.18245
    assert five.slope_interval()[0] == pytest.approx(0.14 - 3.18245 * 0.04, abs=1e-6)
    assert five.trend_shown
    falling = dataclasses.replace(five, slope=-0.14)
    assert falling.trend_shown and falling.slope_interval()[1] < 0
    flat = fit_power_law([1, 2, 4], [3.0, 3.0, 3.0])
    assert not flat.trend_shown
    # a flat series fitted to a rounding-size slope with no error is no trend; a real slope
    # with no error is one
    exact = dataclasses.replace(three, slope=-1e-17, slope_stderr=0.0)
    assert exact.slope_interval() == (-1e-17, -1e-17) and not exact.trend_shown
    assert dataclasses.replace(exact, slope=-1e-9).trend_shown
    # an interval that ends exactly at 0 does not exclude it
    t_three = stats.t.ppf(0.975, 1)
    touching = dataclasses.replace(three, slope=t_three * 0.01, slope_stderr=0.01)
    assert touching.slope_interval()[0] == 0.0 and not touching.trend_shown
    touching = dataclasses.replace(touching, slope=-t_three * 0.01)
    assert touching.slope_interval()[1] == 0.0 and not touching.trend_shown


def test_the_lines_interval_at_a_point_is_the_intercept_interval_of_the_fit_centred_there():
    """An independent route to interval_at: regress on log10(x) - log10(x0), and the
    intercept's own t interval is the line's at x0. Five points leave 3 degrees of freedom
    (t = 3.18; n // 2 would give 2, t = 4.30, where four points cannot tell them apart)."""
    x, y = [100, 200, 400, 800, 1600], [1.0, 0.85, 0.62, 0.55, 0.40]
    law = fit_power_law(x, y)
    assert law.n == 5
    for x0 in (300.0, 5000.0):  # inside the measured range, and an extrapolation
        centred = stats.linregress(np.log10(x) - math.log10(x0), np.log10(y))
        half = stats.t.ppf(0.975, 3) * centred.intercept_stderr
        assert law.interval_at(x0) == pytest.approx(
            (10 ** (centred.intercept - half), 10 ** (centred.intercept + half)), rel=1e-9)


def test_a_ratio_trend_over_data_that_its_interval_does_not_show_is_said_so():
    noisy = [_run(trajectories=t, iid=0.04 * t ** -0.5, ood=0.1 * t ** -0.2 * wobble,
                  factor="central" if t == 4 else "data size")
             for t, wobble in ((1, 1.0), (2, 0.8), (4, 1.1))]
    law = data_series(noisy, "mace").ratio_law
    assert not law.trend_shown
    text = "\n".join(why_ratios_section(noisy, {}, {}, None, None, 18))
    assert "The ratio's slope interval includes 0: over 3 sizes its change with data is not " \
        "distinguishable from none." in text
    assert "frames per molecule; its slope's 95% CI includes 0)" in text
    clean = "\n".join(why_ratios_section(_data_runs((1, 2, 4), central=True), {}, {}, None,
                                         None, 18))
    assert "slope interval includes 0" not in clean and "slope's 95% CI" not in clean


def test_seed_noise_pools_log_ratios_within_configurations():
    """Hand-worked: log deviations of +-0.1 in a pair and -0.1, 0, +0.1 in a triple give
    0.04 over 1 + 2 degrees of freedom; a single seed adds nothing; scale does not matter."""
    groups = [[1.0, math.exp(0.2)], [math.e, math.exp(1.1), math.exp(1.2)], [5.0]]
    sigma, dof = pooled_log_spread(groups)
    assert dof == 3 and sigma == pytest.approx(math.sqrt(0.04 / 3))
    assert pooled_log_spread([[10 * x for x in g] for g in groups])[0] == pytest.approx(sigma)
    assert pooled_log_spread([[3.0], [4.0]]) is None and pooled_log_spread([]) is None
    assert noise_band(0.05, 1) == pytest.approx(math.exp(2 * 0.05 * math.sqrt(2)))
    assert noise_band(0.05, 3) == pytest.approx(math.exp(2 * 0.05 * math.sqrt(4 / 3)))


def _noisy_central(ratios=(3.0, 3.3, 2.7)):
    return [_run(iid=0.01, ood=0.01 * r, seed=seed) for seed, r in enumerate(ratios)]


def test_the_verdict_reads_each_factor_against_the_measured_seed_noise():
    central = _noisy_central()
    sigma, dof = pooled_log_spread([[r.ratio for r in central]])
    band = noise_band(sigma, 3)
    base = _geometric_mean_ratio(central)
    small_change, large_change = 1.05, 2.0
    assert 1 / band < small_change < band < large_change
    runs = [*central,
            _run(factor="split protocol", split="random-frames", iid=0.01,
                 ood=0.01 * base * small_change),
            _run(factor="model size", size="paper", iid=0.01, ood=0.01 * base * large_change)]
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    verdict = text.split("### Verdict")[1]
    assert "- mace: model size moves the ratio most." in verdict
    assert f"OOD/ID varies x{math.exp(sigma):.3f} from seed to seed (pooled over {dof} degrees " \
        "of freedom: the study's 3 central seeds)" in verdict
    assert f"only past x{band:.2f} either way; beyond noise: model size; not beyond: split " \
        "protocol." in verdict
    # only the small change: nothing is beyond noise, and the headline says so
    text = "\n".join(why_ratios_section(runs[:4], {}, {}, None, None, 18))
    assert "- mace: no factor moves the ratio beyond noise." in text
    # the reference matrix's seeds pool in; a diverged central seed does not
    wild = _run(iid=0.01, ood=0.5, seed=3)
    wild.status = "diverged"
    reference = {"mace": [[2.0, 2.0 * math.exp(0.02)]], "schnet": [[1.0, 9.0]]}
    text = "\n".join(why_ratios_section([*runs, wild], {}, {}, None, None, 18,
                                        reference_ratio_groups=reference))
    pooled = pooled_log_spread([[2.0, 2.0 * math.exp(0.02)], [r.ratio for r in central]])
    assert pooled[1] == dof + 1
    assert f"OOD/ID varies x{math.exp(pooled[0]):.3f} from seed to seed (pooled over " \
        f"{dof + 1} degrees of freedom: the reference matrix's seeds of mace and the study's 3 " \
        "central seeds)" in text
    # a reference configuration of one seed measures nothing and is not named
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18,
                                        reference_ratio_groups={"mace": [[2.0]]}))
    assert "(pooled over 2 degrees of freedom: the study's 3 central seeds)" in text


def test_a_data_size_change_is_beyond_noise_only_where_its_slope_interval_shows_it():
    central = _noisy_central((3.0, 3.03, 2.97))
    wobbly = _wobbly_data_runs()
    text = "\n".join(why_ratios_section(central + wobbly, {}, {}, None, None, 18))
    assert not data_series(central + wobbly, "mace").ratio_law.trend_shown
    assert "not beyond: data size (data size is judged by its fitted slope's 95% interval" \
        in text
    assert "- mace: no factor moves the ratio beyond noise." in text
    steady = _data_runs((1, 2, 8, 16))
    text = "\n".join(why_ratios_section(central + steady, {}, {}, None, None, 18))
    assert "beyond noise: data size; not beyond: none (data size is judged" in text
    assert "- mace: data size moves the ratio most." in text


def test_a_data_size_trend_its_slope_interval_shows_is_beyond_noise_however_small():
    """Data size is judged by its fitted slope's interval alone, never by the seed-noise band:
    a ratio change of x1.03 over 1-16 trajectories on a line (so its interval excludes 0) is
    beyond noise, though a one-seed contrast of that size would sit inside the band."""
    def line(trajectories):  # ID = 0.04 t^-0.5 and OOD/ID = 3 t^0.01
        return 0.04 * trajectories ** -0.5, 3 * trajectories ** 0.01

    iid, ratio = line(4)
    central = [_run(iid=iid, ood=iid * ratio * math.exp(step), seed=seed)
               for seed, step in enumerate((0.0, 0.1, -0.1))]  # geometric mean on the line
    data = [_run(trajectories=t, iid=line(t)[0], ood=line(t)[0] * line(t)[1],
                 factor="data size") for t in (1, 2, 8, 16)]
    law = data_series(central + data, "mace").ratio_law
    assert law.trend_shown and law.slope == pytest.approx(0.01)
    band = noise_band(pooled_log_spread([[r.ratio for r in central]])[0], 3)
    change = factor_effects(central + data, "mace")["data size"][0]
    assert change == pytest.approx(16 ** 0.01) and within_noise(change, band)
    text = "\n".join(why_ratios_section(central + data, {}, {}, None, None, 18))
    assert "beyond noise: data size; not beyond: none (data size is judged" in text


def test_a_reference_configuration_of_three_seeds_is_named_as_a_source_of_the_noise():
    """The reference matrix has three seeds per configuration: such a group is named as a
    source of the seed noise, not only a pair."""
    reference = {"mace": [[2.0, 2.1, 2.2]]}
    runs = [_run(iid=0.01, ood=0.03),
            _run(factor="split protocol", split="random-frames", iid=0.01, ood=0.06)]
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18,
                                        reference_ratio_groups=reference))
    assert "(pooled over 2 degrees of freedom: the reference matrix's seeds of mace), so a " \
        "one-seed point" in text


class _Store:
    """The two queries of a results store that the seed-noise groups read."""

    def __init__(self, runs, ratios):
        self._runs = runs
        self._metrics = [m for run, ratio in zip(runs, ratios, strict=True) for m in (
            {"run_id": run["run_id"], "split": "id_test", "metric": "force_mae", "value": 0.01},
            {"run_id": run["run_id"], "split": "ood_test", "metric": "force_mae",
             "value": 0.01 * ratio},
            {"run_id": run["run_id"], "split": "ood_test", "metric": "energy_mae",
             "value": 99.0})]

    def runs(self):
        return self._runs

    def metrics(self, molecule):
        assert molecule == "all"
        return self._metrics


def test_the_reference_seed_groups_keep_configurations_apart_and_leave_diverged_seeds_out():
    from gmdbench.pipeline.reference_table import _reference_ratio_groups

    def run(run_id, model="mace", e0="isolated", task="fragment_duplication",
            regime="scratch", status="capped", variant=None):
        return {"run_id": run_id, "model": model, "task": task, "regime": regime,
                "model_metadata": {"variant": variant} if variant else {},
                "config": {}, "training": {"status": status, "reference_energies_kind": e0}}

    runs = [run("a"), run("b"), run("c", e0="fit"), run("d", e0="fit"),
            run("e", status="diverged"), run("f", task="other_task"),
            run("g", regime="fine-tune"), run("h", model="schnet"),
            run("i", model="deepset_moe", variant="spatial"),
            run("j", model="deepset_moe", variant="learned")]
    ratios = [2.0, 2.2, 3.0, 3.3, 40.0, 5.0, 6.0, 1.5, 1.7, 2.5]
    groups = _reference_ratio_groups(_Store(runs, ratios))
    assert groups == {"deepset_moe": [[pytest.approx(1.7)], [pytest.approx(2.5)]],
                      "mace": [[pytest.approx(2.0), pytest.approx(2.2)],
                               [pytest.approx(3.0), pytest.approx(3.3)]],
                      "schnet": [[pytest.approx(1.5)]]}


def test_where_the_largest_change_is_not_shown_the_headline_names_the_largest_beyond_noise():
    """The data-size fit moves the ratio most (x2.4) but its slope interval includes 0, so the
    headline names the largest change beyond noise (split protocol, x1.5), not the next one
    (model size, x1.2)."""
    central = _noisy_central((3.0, 3.03, 2.97))
    base = _geometric_mean_ratio(central)
    wobbly = _wobbly_data_runs()
    runs = [*central, *wobbly,
            _run(factor="split protocol", split="random-frames", iid=0.01, ood=0.01 * base * 1.5),
            _run(factor="model size", size="paper", iid=0.01, ood=0.01 * base * 1.2)]
    effects = factor_effects(runs, "mace")
    assert effects["data size"][0] > effects["split protocol"][0] > effects["model size"][0]
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    assert "- mace: split protocol moves the ratio most beyond noise." in text
    assert "beyond noise: split protocol, model size; not beyond: data size" in text


def test_with_every_central_seed_diverged_the_band_is_read_against_one_central_seed():
    """Seed noise measured on the reference matrix alone (the only central seed diverged):
    the band is the one for a single central point, and the sentence says 1, as the band
    it prints was computed with, not 0."""
    wild = _run(iid=0.01, ood=0.5)
    wild.status = "diverged"
    runs = [wild, _run(factor="model size", size="paper", iid=0.01, ood=0.6)]
    reference = {"mace": [[2.0, 2.0 * math.exp(0.02)]]}
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18,
                                        reference_ratio_groups=reference))
    sigma, _ = pooled_log_spread(reference["mace"])
    assert f"so a one-seed point against 1 central seed(s) is beyond noise (2 sigma) only past " \
        f"x{noise_band(sigma, 1):.2f} either way" in text


def test_central_seeds_without_a_recorded_status_still_measure_seed_noise():
    """Only a diverged seed is left out of the noise: a run whose record has no training
    status ("not recorded", an older archive) is a seed like any other."""
    central = _noisy_central()
    for run in central:
        run.status = "not recorded"
    runs = [*central, _run(factor="model size", size="paper", iid=0.01, ood=0.06)]
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    assert "(pooled over 2 degrees of freedom: the study's 3 central seeds)" in text


def test_a_change_is_within_noise_up_to_the_bands_edge_either_way():
    assert within_noise(1.2, 1.2) and within_noise(1 / 1.19, 1.2) and within_noise(1.0, 1.2)
    assert not within_noise(1.21, 1.2) and not within_noise(1 / 1.21, 1.2)


def test_one_central_seed_reads_its_band_from_the_reference_seeds_alone():
    """With one central seed, the band is a one-seed point against one seed (sqrt 2 spreads),
    and the seeds it was measured on are the reference matrix's only."""
    reference = {"mace": [[2.0, 2.0 * math.exp(0.1)], [3.0, 3.0 * math.exp(0.1)]]}
    sigma, dof = pooled_log_spread(reference["mace"])
    runs = [_run(iid=0.01, ood=0.03),
            _run(factor="split protocol", split="random-frames", iid=0.01, ood=0.06)]
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18,
                                        reference_ratio_groups=reference))
    assert f"(pooled over {dof} degrees of freedom: the reference matrix's seeds of mace), " \
        f"so a one-seed point against 1 central seed(s) is beyond noise (2 sigma) only past " \
        f"x{noise_band(sigma, 1):.2f} either way" in text
    assert noise_band(sigma, 1) != pytest.approx(noise_band(sigma, 2), abs=0.005)
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    assert "seed noise is not measured yet (no configuration of mace has two seeds archived " \
        "that did not diverge), so no change here is tested against it." in text
    assert "- mace: split protocol moves the ratio most." in text  # untested: not re-worded
    two = _noisy_central((3.0, 3.3))
    text = "\n".join(why_ratios_section([*two, runs[1]], {}, {}, None, None, 18))
    assert "(pooled over 1 degree of freedom: the study's 2 central seeds)" in text


def test_the_fitted_law_at_a_size_carries_the_interval_of_the_line_there():
    """Hand-worked OLS on log10: at x the line's 95% interval is t(n-2) s sqrt(1/n +
    (log x - mean)^2 / Sxx), narrowest at the points' mean and wider the farther out."""
    x = np.array([100.0, 200.0, 400.0, 800.0])
    y = np.array([0.050, 0.038, 0.031, 0.022])
    law = fit_power_law(list(x), list(y))
    lx, ly = np.log10(x), np.log10(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    s = math.sqrt(((ly - intercept - slope * lx) ** 2).sum() / 2)
    sxx = ((lx - lx.mean()) ** 2).sum()
    for at in (1000.0, 10 ** lx.mean(), 50.0):
        half = stats.t.ppf(0.975, 2) * s * math.sqrt(1 / 4 + (math.log10(at) - lx.mean()) ** 2
                                                     / sxx)
        centre = intercept + slope * math.log10(at)
        assert law.interval_at(at) == pytest.approx((10 ** (centre - half),
                                                     10 ** (centre + half)))
    width = [math.log10(high / low) for low, high in
             (law.interval_at(v) for v in (10 ** lx.mean(), 1000.0, 10_000.0))]
    assert width[0] < width[1] < width[2]
    runs = _data_runs((1, 2, 4, 8), central=True)
    runs[0].ood_mae *= 1.1  # off the line: an interval of some width
    series = data_series(runs, "mace")
    text = "\n".join(why_ratios_section(runs, {}, {}, None, None, 18))
    low, high = series.ratio_law.interval_at(1000)
    assert f"OOD/ID {series.ratio_law.at(1000):.2f} (95% CI {low:.2f} to {high:.2f})." in text
    low, high = series.id_law.interval_at(1000)
    assert f"give ID {series.id_law.at(1000):.4f} (95% CI {low:.4f} to {high:.4f}), OOD " in text
    low, high = series.ood_law.interval_at(1000)
    assert (f", OOD {series.ood_law.at(1000):.4f} (95% CI {low:.4f} to {high:.4f}), "
            "OOD/ID ") in text


def test_the_published_ratio_is_read_against_the_fits_interval_at_the_same_id_error():
    """Within the measured range, data size explains the published ratio only if it lies
    outside the ratio fit's interval at the data size where our ID error meets theirs."""
    runs = _data_runs((1, 2, 4, 8, 16), central=True)
    runs[1].ood_mae *= 1.15  # off the line: an interval of some width
    runs[3].ood_mae *= 0.9
    series = data_series(runs, "mace")
    target = series.id_law.at(400)  # met at 400 frames, inside the range
    low, high = series.ratio_law.interval_at(series.id_law.solve(target))
    assert high / low > 1.2
    for ratio, verdict in (((low * high) ** 0.5, "lies inside that interval, so data size "
                                                 "alone could explain it."),
                           (high * 1.5, "lies outside that interval: at the same ID error, "
                                        "data size alone does not explain a different ratio."),
                           (low / 1.5, "lies outside that interval: at the same ID error, "
                                       "data size alone does not explain a different ratio.")):
        published = {"MACE": {"force_mae_id": repr(target),
                              "force_mae_ood": repr(ratio * target)}}
        text = "\n".join(why_ratios_section(runs, published, {"mace": "MACE"}, None, None, 18))
        assert f"where the ratio fit gives {series.ratio_law.at(400):.1f} (95% CI {low:.1f} to " \
            f"{high:.1f}) (published {ratio:.1f}): the published ratio {verdict}" in text
