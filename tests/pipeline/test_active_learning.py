"""Uncertainty signals and the active-learning loop, on the tiny task with real models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gmdbench.active.acquisition import pick_farthest_points, pick_largest, pick_random
from gmdbench.data.store import DatasetStore
from gmdbench.errors import GmdError
from gmdbench.evaluation.uncertainty import coverage, ence, ensemble_forces
from gmdbench.pipeline.active_learning import (
    ActiveLearningConfig,
    Pool,
    check_pool_disjoint,
    geometry_hash,
    load_study,
    pick,
    pool_ensemble_spread,
    round_picks,
    run_active_learning,
)
from gmdbench.pipeline.uncertainty import uncertainty_for_runs

# -- acquisition rules: each picks what it says ---------------------------------------------


def test_random_rule_is_seeded_and_draws_from_the_candidates():
    candidates = np.array([3, 5, 8, 13, 21, 34, 55])
    first = pick_random(candidates, 3, seed=0, round_index=1)
    assert np.array_equal(first, pick_random(candidates, 3, seed=0, round_index=1))
    assert set(first) <= set(candidates) and len(set(first)) == 3
    others = {tuple(pick_random(candidates, 3, seed=s, round_index=1)) for s in range(8)}
    assert len(others) > 1


def test_largest_rule_picks_the_top_scores():
    candidates = np.array([10, 11, 12, 13, 14])
    scores = np.array([0.1, 0.9, 0.3, 0.8, 0.2])
    assert pick_largest(candidates, scores, 2).tolist() == [11, 13]


def test_farthest_point_rule_spreads_a_batch():
    # two far clusters of near-duplicates; top-N by distance would take one cluster only
    features = np.array([[10.0, 0.0], [10.1, 0.0], [10.2, 0.0], [0.0, 9.0], [0.0, 9.1]])
    labelled = np.array([[0.0, 0.0]])
    picks = pick_farthest_points(np.arange(5), features, labelled, 2)
    assert {0, 1, 2} & set(picks) and {3, 4} & set(picks)
    by_distance = pick_largest(np.arange(5), np.linalg.norm(features, axis=1), 2)
    assert set(by_distance) <= {0, 1, 2}


# -- ensemble statistics ------------------------------------------------------------------------


def test_identical_members_have_zero_spread_and_calibration_is_measured():
    forces = np.random.default_rng(0).normal(size=(12, 3))
    mean, sigma = ensemble_forces([forces, forces.copy(), forces.copy()])
    assert np.array_equal(mean, forces) and np.all(sigma == 0)
    rng = np.random.default_rng(1)
    sigma = np.full((4000, 3), 0.1)
    calibrated = rng.normal(scale=0.1, size=(4000, 3))
    cover = coverage(sigma, calibrated)
    assert cover["within_1_sigma"] == pytest.approx(0.683, abs=0.02)
    assert cover["within_2_sigma"] == pytest.approx(0.954, abs=0.01)
    assert ence(sigma, calibrated) < 0.05
    assert ence(sigma, 3 * calibrated) > 1.5  # over-confident by 3x


# -- the loop on real data --------------------------------------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_task_path, tiny_preset_path):
    config = ActiveLearningConfig(
        name="tiny-al", task=str(tiny_task_path), preset=str(tiny_preset_path),
        model={"name": "schnet", "options": {"hidden_channels": 16, "num_filters": 16},
               "training": {"epochs": 2, "batch_size": 4}},
        fine_tune={"epochs": 1, "batch_size": 4}, seeds=[0], rounds=1, batch=2,
        ensemble_size=2, pool={"trajectories": 2, "frames_per_trajectory": 4})
    out = tmp_path_factory.mktemp("al")
    summary = run_active_learning(config, out)
    return config, out, json.loads(summary.read_text())


def test_loop_writes_a_curve_per_rule_and_a_report(study):
    config, out, summary = study
    assert set(summary["curves"]) == set(config.rules)
    for rows in summary["curves"].values():
        assert [row["labels"] for row in rows] == [0, config.batch]
    # round 0 is one shared run: every rule starts from the same model
    curve = json.loads((out / "curve.json").read_text())
    assert len({p["run_id"] for p in curve if p["round"] == 0}) == 1
    assert summary["seeds_with_unshared_round_0"] == []
    assert "Caveat: in seed(s)" not in (out / "report" / "active_learning.md").read_text()
    # a round's run is cached by its dataset: rules that picked the same frames share it
    picks = {rule: tuple(json.loads((out / "al" / rule / "seed0" / "round1" / "picks.json")
                                    .read_text())["pool_indices"]) for rule in config.rules}
    runs = {p["rule"]: p["run_id"] for p in curve if p["round"] == 1}
    for a in config.rules:
        for b in config.rules:
            assert (picks[a] == picks[b]) == (runs[a] == runs[b]) or "ensemble" in (a, b)
    assert (out / "report" / "active_learning.png").stat().st_size > 0
    report = (out / "report" / "active_learning.md").read_text()
    assert "| Labels to 2x | Labels to 1.5x |" in report
    assert summary["labels_to_ratio"]["2"].keys() == summary["curves"].keys()
    assert (out / "uncertainty" / "round0-seed0" / "uncertainty.json").exists()


def test_loop_never_draws_a_test_frame(study):
    _, out, _ = study
    base = DatasetStore(next((out / "datasets").glob("*-seed0.db")))
    tests = {geometry_hash(r.numbers, r.positions) for split in ("id_test", "ood_test")
             for r in base.rows(split=split)}
    for grown in (out / "al").glob("*/seed0/round1/data.db"):
        added = [r for r in DatasetStore(grown).rows(split="train")
                 if r.get("source") == "active-learning"]
        assert len(added) == 2
        assert not {geometry_hash(r.numbers, r.positions) for r in added} & tests
        # the fixed OOD test set is unchanged
        assert DatasetStore(grown).summary()["frames_per_split"]["ood_test"] == \
            base.summary()["frames_per_split"]["ood_test"]
    with pytest.raises(GmdError, match="shares"):
        check_pool_disjoint(base, base)


@pytest.mark.parametrize("rule", ["random", "ensemble", "distance", "farthest_point"])
def test_a_resumed_round_gives_the_same_picks(study, rule):
    config, out, _ = study
    folder = out / "al" / rule / "seed0"
    saved = json.loads((folder / "round1" / "picks.json").read_text())["pool_indices"]
    curve = json.loads((out / "curve.json").read_text())
    run_id = next(p["run_id"] for p in curve if p["round"] == 0)
    members = 2 if rule == "ensemble" else 1
    run_dirs = sorted((out / "runs").glob(f"*-{run_id}"))
    if members == 2:
        run_dirs += sorted(p for p in (out / "runs").glob("*-s1000-*"))[:1]
    base = next((out / "datasets").glob("*-seed0.db"))
    pool = Pool(DatasetStore(next((out / "datasets").glob("*-pool-*.db"))), 5.0)
    again = round_picks(config, rule, 0, 1, run_dirs, base, pool, np.array([], dtype=int),
                        out / "recomputed" / rule)  # as after a kill before picks.json
    assert again.tolist() == saved
    assert len(set(saved)) == config.batch


def test_ensemble_of_one_model_twice_has_zero_spread(study):
    _, out, _ = study
    run_dir = next(p for p in (out / "runs").glob("*-s0-*") if (p / "best.pt").exists())
    pool = Pool(DatasetStore(next((out / "datasets").glob("*-pool-*.db"))), 5.0)
    assert np.all(pool_ensemble_spread([run_dir, run_dir], pool) == 0)
    assert np.any(pool_ensemble_spread(
        [run_dir, next((out / "runs").glob("*-s1000-*"))], pool) > 0)


def test_spread_and_distance_rank_a_rattled_frame_above_its_source(trained_runs, tiny_dataset,
                                                                   tmp_path):
    _, run_dirs = trained_runs
    source = next(DatasetStore(tiny_dataset).rows(split="id_test"))
    rattled = source.positions + np.random.default_rng(0).normal(scale=0.25,
                                                                 size=source.positions.shape)
    store = DatasetStore(tmp_path / "pool.db", create=True)
    for frame, positions in enumerate((source.positions, rattled)):
        store.write_frame(source.numbers, positions, 0.0, np.zeros_like(positions),
                          {"split": "ood_test", "trajectory_id": "probe", "frame": frame,
                           "smiles": source.smiles})
    pool = Pool(store, 5.0)
    spread = pool_ensemble_spread(run_dirs[:2], pool)  # schnet seeds 0 and 1
    assert spread[1] > spread[0]
    candidates = np.arange(2)
    assert pick("distance", candidates, 1, 0, 1, [], tiny_dataset, pool).tolist() == [1]
    assert pick("ensemble", candidates, 1, 0, 1, run_dirs[:2], tiny_dataset, pool).tolist() \
        == [1]


def test_uncertainty_of_an_ensemble_is_written_and_checked(trained_runs, tmp_path):
    _, run_dirs = trained_runs
    summary = uncertainty_for_runs(run_dirs[:2], tmp_path / "u")
    for split in ("id_test", "ood_test"):
        data = summary["splits"][split]
        assert 0.0 <= data["coverage"]["within_1_sigma"] <= data["coverage"]["within_2_sigma"]
        for name in summary["signals"]:
            assert data["signals"][name]["frames"] > 0
    assert (tmp_path / "u" / "uncertainty.png").stat().st_size > 0
    assert (tmp_path / "u" / "reliability.png").stat().st_size > 0
    ood = summary["splits"]["ood_test"]
    within = ood["signals"]["ensemble_force_std"]["within_molecule"]
    assert within["groups"] <= within["of_groups"] == ood["molecules"]
    assert set(ood["baselines"]) == {"inverse_atoms", "molecule_mean_force_std"}
    calibration = summary["calibration"]
    assert calibration["members"] == 2
    assert calibration["expected_within_1_sigma"] < 0.6827  # two members: Student-t, 1 dof
    assert calibration["calibration_components"] > 0
    header = (tmp_path / "u" / "frames.csv").read_text().splitlines()[0].split(",")
    assert {"n_atoms", "worst_atom_error", "force_deviation_max", "inverse_atoms"} <= set(header)
    with pytest.raises(GmdError, match="differs in"):
        uncertainty_for_runs([run_dirs[0], run_dirs[2]], tmp_path / "v")  # schnet and mace


def test_builtin_study_loads():
    study = load_study("fragment-duplication-quick")
    assert study.rules == ["random", "ensemble", "distance", "farthest_point"]
    assert study.seeds == [0, 1, 2]
    assert study.rounds * study.batch <= study.pool.trajectories * \
        study.pool.frames_per_trajectory * 2  # two OOD molecules or more in the task


def test_builtin_powered_study_has_what_a_powered_comparison_needs():
    study = load_study("fragment-duplication-powered")
    assert len(study.seeds) >= 10
    assert "no_label" in study.rules and study.baseline_rule in study.rules
    assert study.pool.per_seed is not None
    assert study.target_ood_force_mae is not None and study.batch_diversity == "clusters"


def test_paired_study_with_control_and_seed_pools(tmp_path, tiny_task_path, tiny_preset_path):
    config = ActiveLearningConfig(
        name="tiny-paired", task=str(tiny_task_path), preset=str(tiny_preset_path),
        model={"name": "schnet", "options": {"hidden_channels": 16, "num_filters": 16},
               "training": {"epochs": 2, "batch_size": 4}},
        fine_tune={"epochs": 1, "batch_size": 4}, seeds=[0, 1], rounds=1, batch=2,
        rules=["random", "distance", "no_label"], batch_diversity="clusters",
        target_ood_force_mae=0.01,
        pool={"trajectories": 2, "frames_per_trajectory": 4, "per_seed": 5})
    summary = json.loads(run_active_learning(config, tmp_path).read_text())
    # the control added no label but trained again: a new run on unchanged data
    control = [p for p in json.loads((tmp_path / "curve.json").read_text())
               if p["rule"] == "no_label"]
    assert [p["labels"] for p in control if p["seed"] == 0] == [0, 0]
    assert len({p["run_id"] for p in control if p["seed"] == 0}) == 2
    assert not (tmp_path / "al" / "no_label" / "seed0" / "round1" / "data.db").exists()
    # each seed's picks come from its own pool subset
    from gmdbench.pipeline.active_learning import seed_candidates
    for seed in (0, 1):
        picks = json.loads((tmp_path / "al" / "distance" / f"seed{seed}" / "round1" /
                            "picks.json").read_text())["pool_indices"]
        pool_size = len(Pool(DatasetStore(next((tmp_path / "datasets").glob("*-pool-*.db"))),
                             5.0))
        assert set(picks) <= set(seed_candidates(config, pool_size, seed).tolist())
    compared = summary["comparisons"]
    assert set(compared["distance"]) == {"area vs random", "final vs random",
                                         "area vs no_label", "final vs no_label"}
    assert compared["distance"]["area vs random"]["n"] == 2
    assert set(compared["random"]) == set()  # against the control: the control's own row
    assert set(compared["no_label"]) == {"area vs random", "final vs random"}
    family = [test for tests in compared.values() for test in tests.values()]
    # distance: 2 metrics x (random, control); the control: 2 x random
    assert len(family) == 6 and all("adjusted_p" in test for test in family)
    report = (tmp_path / "report" / "active_learning.md").read_text()
    assert "## Paired over seeds (decided by code)" in report
    assert "Labels to an OOD force MAE of 0.01 eV/A" in report
    # tiny models never get near 0.01 eV/A: said, and the area named as the comparison
    assert min(p["ood_force_mae"] for p in json.loads((tmp_path / "curve.json").read_text())) \
        > 0.01
    assert "No rule reached 0.01 eV/A within 2 labels in any seed" in report


def test_a_study_archived_unit_by_unit_continues_on_a_fresh_folder(tmp_path, tiny_task_path,
                                                                   tiny_preset_path):
    """With --archive, each finished (rule, seed) is written at once; a fresh output folder
    (a new machine) takes those units from the archive and trains only the missing ones."""
    from gmdbench.runner.study_archive import StudyArchive

    config = ActiveLearningConfig(
        name="tiny-archived", task=str(tiny_task_path), preset=str(tiny_preset_path),
        model={"name": "schnet", "options": {"hidden_channels": 16, "num_filters": 16},
               "training": {"epochs": 2, "batch_size": 4}},
        fine_tune={"epochs": 1, "batch_size": 4}, seeds=[0], rounds=1, batch=2,
        rules=["random", "ensemble"], ensemble_size=2,
        pool={"trajectories": 2, "frames_per_trajectory": 4})
    archive = tmp_path / "archive"
    run_active_learning(config, tmp_path / "first", archive=archive)
    first = json.loads((tmp_path / "first" / "curve.json").read_text())
    saved = StudyArchive(archive)
    unit = saved.unit("ensemble", 0)
    assert unit is not None and unit.points == [p for p in first if p["rule"] == "ensemble"]
    assert [len(p["pool_indices"]) for p in unit.picks] == [config.batch]
    assert unit.base_dataset_hash != unit.pool_dataset_hash and unit.machine
    assert (archive / "uncertainty" / "round0-seed0" / "frames.csv").exists()
    assert json.loads((archive / "curve.json").read_text()) == first
    assert (archive / "report" / "active_learning.md").exists()
    # the archive keeps numbers; figures are remade from them, not committed per seed
    assert not list((archive / "uncertainty").rglob("*.png"))
    assert not list((archive / "report").glob("uncertainty_*.png"))

    # every unit archived: nothing is trained, the curve and uncertainty come back as saved
    run_active_learning(config, tmp_path / "second", archive=archive)
    assert not (tmp_path / "second" / "runs").exists()
    assert json.loads((tmp_path / "second" / "curve.json").read_text()) == first
    assert (tmp_path / "second" / "uncertainty" / "round0-seed0" / "frames.csv").read_bytes() \
        == (archive / "uncertainty" / "round0-seed0" / "frames.csv").read_bytes()

    # one unit missing: only its rounds are trained (round 0 and round 1 of random)
    (archive / "units" / "random-seed0.json").unlink()
    run_active_learning(config, tmp_path / "third", archive=archive)
    trained = sorted(path.name for path in (tmp_path / "third" / "runs").iterdir())
    assert len(trained) == 2 and not any("-s1000-" in name for name in trained)
    again = json.loads((tmp_path / "third" / "curve.json").read_text())
    assert [p["run_id"] for p in again] == [p["run_id"] for p in first]
    assert StudyArchive(archive).unit("random", 0) is not None

    # another study is refused, naming what differs, and the archive is left as it was
    other = config.model_copy(update={"seeds": [0, 1]})
    with pytest.raises(GmdError, match=r"holds another study .*seeds"):
        run_active_learning(other, tmp_path / "fourth", archive=archive)
    assert not (tmp_path / "fourth").exists()


def test_an_unfinished_archive_reports_its_complete_seeds_only(tmp_path):
    """An archive still being filled gets an interim report, paired over the seeds whose every
    rule is archived (a seed with one rule missing is left out), and says so at its head."""
    from gmdbench.pipeline.active_learning import rebuild_active_learning_report
    from gmdbench.runner.study_archive import ArchivedUnit, StudyArchive

    config = ActiveLearningConfig(
        name="interim", task="fragment_duplication", model={"name": "schnet"}, seeds=[0, 1, 2],
        rounds=1, batch=2, rules=["random", "no_label"], target_ood_force_mae=0.05)
    archive = StudyArchive(tmp_path)
    archive.start(config.model_dump(mode="json"))
    with pytest.raises(GmdError, match="0 of 6 rule-seed units and no seed"):
        rebuild_active_learning_report(tmp_path)

    def unit(rule, seed, ood):
        points = [{"rule": rule, "seed": seed, "round": index, "labels": 2 * index * (
            rule == "random"), "id_force_mae": 0.04, "ood_force_mae": value,
            "run_id": f"{rule}{seed}{index}"} for index, value in enumerate(ood)]
        return ArchivedUnit(rule=rule, seed=seed, points=points, picks=[], device="cpu",
                            base_dataset_hash="b", pool_dataset_hash="p", machine="m",
                            versions={}, wall_seconds=1.0)

    for seed, (random_end, control_end) in enumerate([(0.06, 0.09), (0.05, 0.07)]):
        archive.save_unit(unit("random", seed, [0.1, random_end]))
        archive.save_unit(unit("no_label", seed, [0.1, control_end]))
    archive.save_unit(unit("random", 2, [0.1, 0.01]))  # seed 2 lacks its control
    summary = json.loads(rebuild_active_learning_report(tmp_path).read_text())
    assert summary["config"]["seeds"] == [0, 1]
    assert summary["curves"]["random"][1]["ood_mean"] == pytest.approx(0.055)
    # random against the control is stated once: the control's row against random
    assert set(summary["comparisons"]["random"]) == set()
    assert summary["comparisons"]["no_label"]["final vs random"]["n"] == 2
    # the control adds no label: its area is over its rounds, as a rule's, not 0 / 0
    assert summary["per_seed"]["no_label"]["0"]["area"] == pytest.approx((0.1 + 0.09) / 2)
    area = summary["comparisons"]["no_label"]["area vs random"]
    random_areas = [(0.1 + 0.06) / 2, (0.1 + 0.05) / 2]
    control_areas = [(0.1 + 0.09) / 2, (0.1 + 0.07) / 2]
    assert area["mean_difference"] == pytest.approx(
        np.mean(np.subtract(control_areas, random_areas)))
    report = (tmp_path / "report" / "active_learning.md").read_text()
    assert "**Interim report**: 2 of 3 seeds have every rule archived (5 of 6" in report
    assert "the study was planned at 3 seeds" in report  # a look, not the study's test
    assert "so the verdict is the one at 3 seeds." in report
    assert "No rule reached" not in report  # random reached 0.05 in seed 1
    assert not (tmp_path / "curve.json").exists()  # still an archive being filled
    # the hand-made units' round-0 run ids differ per rule: not one shared start, and said so
    assert summary["seeds_with_unshared_round_0"] == [0, 1]
    assert "Caveat: in seed(s) 0, 1 the rules did not start from one round-0 model" in report
