"""``gmd active-learn CONFIG``: how many new labels close the OOD gap, per acquisition rule?

Start from a task's training set. The candidate pool is a second build of the same task with
another data seed (``pool.seed_offset``): its OOD-molecule trajectories, sampled by MD with the
reference method from other conformers and velocities. The pool is therefore disjoint from the
fixed OOD test set (the base dataset's ``ood_test``, which is never in the pool; checked frame
by frame), and its labels are hidden: a rule sees only geometries and the models' predictions,
and a picked frame is labelled afresh through the reference registry, as a real loop would.

Each round, for each rule and seed: train (round 0: from scratch; later rounds fine-tune the
previous round's model, or retrain from scratch, per ``update``), evaluate on the fixed test
splits, pick ``batch`` pool frames by the rule, label them, add them to the training split.
The ``ensemble`` rule trains ``ensemble_size`` members per round (member 0 is the model every
other rule trains, so round 0 is shared by all rules and its curve is measured on member 0).

Everything is cached and resumable: runs by run hash (a round's dataset has its own hash),
a round's picks in ``picks.json`` (written once, atomically; a resumed round reads them), a
round's dataset built in a hidden file and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gmdbench.active.acquisition import (
    CONTROL,
    RULES,
    Rule,
    pick_farthest_points,
    pick_largest,
    pick_random,
    pick_top_in_clusters,
)
from gmdbench.active.overlap import near_copies
from gmdbench.config import ModelEntry, TrainConfig, load_named, load_preset
from gmdbench.data.extend import LabelledFrame, extended_dataset
from gmdbench.data.generate import build_dataset
from gmdbench.data.graphs import graphset_from_store
from gmdbench.data.store import DatasetStore
from gmdbench.distance.analysis import species_of
from gmdbench.distance.descriptors import SoapSettings, soap_descriptors
from gmdbench.distance.manifold import ManifoldSettings, TrainingManifold, frame_distances
from gmdbench.errors import GmdError
from gmdbench.evaluation.evaluate import predict
from gmdbench.evaluation.uncertainty import atom_sigma, ensemble_forces, per_frame
from gmdbench.files import write_text
from gmdbench.models.base import DTYPES, default_dtype
from gmdbench.names import SafeName
from gmdbench.pipeline.runs import train_and_evaluate
from gmdbench.pipeline.uncertainty import uncertainty_for_runs
from gmdbench.provenance import package_versions
from gmdbench.reference.registry import ReferenceConfig, label_with_retries, resolve_reference
from gmdbench.report.active_learning import write_active_learning_report
from gmdbench.runner.results import ResultsStore
from gmdbench.runner.runs import graph_cutoff, load_potential, run_config
from gmdbench.runner.study_archive import ArchivedUnit, StudyArchive, machine_name
from gmdbench.tasks.spec import load_task

BUILTIN_STUDIES = Path(__file__).parent / "builtin_active"


class PoolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trajectories: int = Field(2, ge=1, description="MD trajectories per OOD molecule")
    frames_per_trajectory: int = Field(24, ge=1)
    seed_offset: int = Field(1000, ge=1, description="pool data seed = data_seed + this")
    per_seed: int | None = Field(
        None, ge=1, description="each seed's rules choose from a random subset of this many "
        "pool frames (drawn with the seed), so deterministic rules vary with the seed too and "
        "their spread over seeds is not training noise alone; None: the whole pool")


class ActiveLearningConfig(BaseModel):
    """An active-learning study: one model, several acquisition rules, several seeds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: SafeName
    task: str
    preset: str = "quick"
    reference: str = "gfn2-xtb"
    data_seed: int = Field(0, ge=0)
    model: ModelEntry
    update: str = Field("fine-tune", pattern="^(fine-tune|retrain)$",
                        description="later rounds: fine-tune the previous round's model on "
                        "the grown set (with `fine_tune` training), or retrain from scratch")
    fine_tune: TrainConfig = TrainConfig(epochs=20, learning_rate=5e-4)
    rules: list[Rule] = Field(default_factory=lambda: list(RULES), min_length=1)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0, 1, 2],
                                                     min_length=1)
    rounds: int = Field(4, ge=1)
    batch: int = Field(16, ge=1, description="frames labelled per round")
    ensemble_size: int = Field(3, ge=2, description="members of the ensemble rule's ensemble")
    pool: PoolConfig = PoolConfig()
    target_ratio: float = Field(2.0, gt=0, description="the goal: OOD force MAE within this "
                                "multiple of the ID force MAE")
    other_ratios: list[float] = Field(
        default_factory=lambda: [1.5, 1.25, 1.2], description="further OOD/ID ratios whose "
        "labels-to-reach are reported (the goal may already hold before any label is added)")
    target_ood_force_mae: float | None = Field(
        None, gt=0, description="an absolute goal (eV/A): labels until the OOD force MAE is "
        "at or below it, per seed; the study should start above it")
    batch_diversity: Literal["none", "clusters"] = Field(
        "none", description="ensemble and distance rules: top-N by score (none), or the best "
        "of each of N k-means clusters of the 4N best (clusters)")
    disjoint_rmsd: float = Field(0.05, ge=0, description="a pool frame within this RMSD (A, "
                                 "after alignment) of a base frame is refused as a near-copy")
    baseline_rule: str = Field("random", description="the rule every other is compared with, "
                               "seed by seed")

    @model_validator(mode="after")
    def _control_needs_fine_tuning(self) -> ActiveLearningConfig:
        if CONTROL in self.rules and self.update != "fine-tune":
            raise ValueError(f"the {CONTROL} control needs update: fine-tune (retraining on "
                             "unchanged data reproduces round 0)")
        if self.baseline_rule not in self.rules:
            raise ValueError(f"baseline_rule {self.baseline_rule!r} is not among the rules "
                             f"{self.rules}")
        return self


def builtin_studies() -> list[str]:
    """The names of the built-in active-learning studies (``gmd active-learn NAME``), from
    their folder, so the CLI's help cannot fall behind it."""
    return sorted(path.stem for path in BUILTIN_STUDIES.glob("*.yaml"))


def load_study(name_or_path: str) -> ActiveLearningConfig:
    """A built-in study by name or an active-learning YAML by path."""
    return load_named(name_or_path, BUILTIN_STUDIES, "{}.yaml", ActiveLearningConfig,
                      "active-learning study")[0]


class Pool:
    """The unlabelled candidates: geometries and keys (the stored labels are never read by a
    rule; they stay in the pool dataset only because MD with the reference computes them)."""

    def __init__(self, store: DatasetStore, cutoff: float):
        self.store = store
        self.graphs, self.keys = graphset_from_store(store, "ood_test", cutoff)
        self.rows = sorted(store.rows(split="ood_test"), key=lambda r: (r.trajectory_id, r.frame))

    def __len__(self) -> int:
        return len(self.keys)


def geometry_hash(numbers: np.ndarray, positions: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(numbers, dtype=np.int64).tobytes()
                          + np.round(np.asarray(positions, dtype=np.float64), 6).tobytes()
                          ).hexdigest()


def check_pool_disjoint(pool: DatasetStore, base: DatasetStore, rmsd: float = 0.05) -> None:
    """Refuse a pool that holds any frame of the base dataset (test or train splits): exactly,
    or within ``rmsd`` A after optimal alignment (a shifted or rotated copy)."""
    taken = {geometry_hash(row.numbers, row.positions) for row in base.rows()}
    shared = [row.trajectory_id for row in pool.rows(split="ood_test")
              if geometry_hash(row.numbers, row.positions) in taken]
    if shared:
        raise GmdError(f"pool {pool.path} shares {len(shared)} frame(s) with dataset "
                       f"{base.path} (first: trajectory {shared[0]}): choose another "
                       "pool.seed_offset")
    if rmsd > 0:
        close = near_copies(
            ((f"{r.trajectory_id}/{r.frame}", r.numbers, r.positions)
             for r in pool.rows(split="ood_test")),
            ((r.trajectory_id, r.numbers, r.positions) for r in base.rows()), rmsd)
        if close:
            raise GmdError(f"pool {pool.path} holds {len(close)} near-copies (RMSD < {rmsd} A "
                           f"after alignment) of frames of dataset {base.path} (first: "
                           f"{close[0][0]}, {close[0][1]:.3f} A): choose another "
                           "pool.seed_offset")


def _pool_preset(config: ActiveLearningConfig):
    preset = load_preset(config.preset)
    trajectories = preset.trajectories.model_copy(update={
        "train": 1, "val": 1, "id_test": 1, "ood_test": config.pool.trajectories})
    sampler = preset.sampler.model_copy(update={
        "frames_per_trajectory": config.pool.frames_per_trajectory})
    return preset.model_copy(update={"name": f"{preset.name}-pool", "trajectories": trajectories,
                                     "sampler": sampler})


def _member_seed(seed: int, member: int) -> int:
    return seed + 1000 * member


_VERSIONED = ("gmd-bench", "torch", "torch-geometric", "ase", "tblite", "numpy")


def run_active_learning(config: ActiveLearningConfig, out_dir: Path,
                        on_event: Callable[[str], None] | None = None,
                        device: str = "cpu", archive: Path | None = None) -> Path:
    """Run (or resume) the study; write curve.json, active_learning.json and the report.

    With ``archive`` (a folder to commit), each finished (rule, seed) is written there at once
    and any unit already there is taken from it, not run again: a study longer than a session
    continues on a fresh machine (``runner/study_archive.py``)."""
    say = on_event or (lambda message: None)
    out_dir = Path(out_dir).resolve()
    study_archive = _open_archive(archive, config) if archive is not None else None
    task = load_task(config.task)
    reference = ReferenceConfig(name=config.reference)
    preset_name = load_preset(config.preset).name
    base_path = out_dir / "datasets" / f"{task.name}-{preset_name}-seed{config.data_seed}.db"
    pool_seed = config.data_seed + config.pool.seed_offset
    pool_path = out_dir / "datasets" / f"{task.name}-{preset_name}-pool-seed{pool_seed}.db"
    for path, preset, seed in ((base_path, load_preset(config.preset), config.data_seed),
                               (pool_path, _pool_preset(config), pool_seed)):
        say(f"dataset {path.name}")
        report = build_dataset(task, preset, reference, seed, path)
        if report.failures:
            raise GmdError(f"dataset {path}: {len(report.failures)} frame(s) failed; see "
                           f"`gmd data info {path}`")
    base = DatasetStore(base_path)
    check_pool_disjoint(DatasetStore(pool_path), base, config.disjoint_rmsd)
    probe = run_config(config.model, task.name, 0, base.content_hash())
    pool = Pool(DatasetStore(pool_path), graph_cutoff(probe))
    if len(pool) < config.rounds * config.batch:
        raise GmdError(f"the pool holds {len(pool)} frames, fewer than rounds x batch = "
                       f"{config.rounds * config.batch}: raise pool.trajectories or "
                       "pool.frames_per_trajectory")
    say(f"pool: {len(pool)} unlabelled frames of the OOD molecules")
    results = ResultsStore(out_dir / "results.db")
    curve: list[dict] = []
    hashes = {"base_dataset_hash": base.content_hash(),
              "pool_dataset_hash": pool.store.content_hash()}
    for seed in config.seeds:
        for rule in config.rules:
            saved = study_archive.unit(rule, seed) if study_archive is not None else None
            if saved is not None:
                say(f"{rule} seed {seed}: archived (ran on {saved.machine}), not run again")
                curve += saved.points
                continue
            started = time.perf_counter()
            points = _one_study(config, task.name, rule, seed, base_path, pool, results,
                                out_dir, say, device)
            curve += points
            if study_archive is not None:
                uncertainty = None
                if rule == "ensemble":  # its round-0 members are here now, not on a resume
                    uncertainty = _uncertainty_of_seed(config, task.name, base_path, out_dir,
                                                       seed, say)
                path = study_archive.save_unit(ArchivedUnit(
                    rule=rule, seed=seed, points=points,
                    picks=_saved_picks(out_dir / "al" / rule / f"seed{seed}", config.rounds),
                    device=device, machine=machine_name(),
                    versions=package_versions(_VERSIONED),
                    wall_seconds=round(time.perf_counter() - started, 1), **hashes),
                    uncertainty)
                say(f"{rule} seed {seed} archived -> {path}")
    write_text(out_dir / "curve.json", json.dumps(curve, indent=2))
    if "ensemble" in config.rules:
        for seed in config.seeds:
            if study_archive is None or not study_archive.restore_uncertainty(seed, out_dir):
                _uncertainty_of_seed(config, task.name, base_path, out_dir, seed, say)
    summary = write_active_learning_report(curve, config.model_dump(mode="json"), out_dir)
    if study_archive is not None:
        study_archive.save_finished(out_dir)
        rebuild_active_learning_report(study_archive.folder)
    say(f"report: {out_dir / 'report'}")
    return summary


def _open_archive(folder: Path, config: ActiveLearningConfig) -> StudyArchive:
    """The study's archive; refused where it holds another study (its units would mix)."""
    archive = StudyArchive(folder)
    saved = archive.saved_config()
    if saved is not None:
        try:
            before = ActiveLearningConfig.model_validate(saved)  # defaults for newer fields
        except ValueError as error:
            raise GmdError(f"archive {folder}: its study.json is not a study config "
                           f"({error})") from error
        if before != config:
            now = config.model_dump(mode="json")
            differs = sorted(key for key, value in before.model_dump(mode="json").items()
                             if now.get(key) != value)
            raise GmdError(f"archive {folder} holds another study (differs in "
                           f"{', '.join(differs)}): use another --archive")
    archive.start(config.model_dump(mode="json"))
    return archive


def _saved_picks(folder: Path, rounds: int) -> list[dict]:
    """Each round's picks.json of a finished unit (the control's name no frame)."""
    return [json.loads((folder / f"round{index}" / "picks.json").read_text())
            for index in range(1, rounds + 1)]


def _one_study(config: ActiveLearningConfig, task: str, rule: str, seed: int, base_path: Path,
               pool: Pool, results: ResultsStore, out_dir: Path, say: Callable[[str], None],
               device: str) -> list[dict]:
    """The rounds of one (rule, seed): the curve's points."""
    folder = out_dir / "al" / rule / f"seed{seed}"
    members = config.ensemble_size if rule == "ensemble" else 1
    data, labelled = base_path, np.array([], dtype=np.int64)
    parents: list[str | None] = [None] * members
    points = []
    for round_index in range(config.rounds + 1):
        dataset_hash = DatasetStore(data).content_hash()
        planned = []
        for member in range(members):
            fine = config.update == "fine-tune" and round_index > 0
            entry = config.model.model_copy(update={
                "training": config.fine_tune if fine else config.model.training})
            run = run_config(entry, task, _member_seed(seed, member), dataset_hash)
            if fine:
                run = run.model_copy(update={"init_from": parents[member]})
            planned.append((run, data))
        say(f"{rule} seed {seed} round {round_index}: {len(labelled)} added labels, "
            f"{members} model(s)")
        run_dirs = train_and_evaluate(planned, out_dir / "runs", results, device=device,
                                      reuse_evaluations=True)
        dirs = [run_dirs[run.run_id] for run, _ in planned]
        parents = [path.name for path in dirs]
        metrics = json.loads((dirs[0] / "metrics.json").read_text())
        points.append({"rule": rule, "seed": seed, "round": round_index,
                       "labels": len(labelled),
                       "id_force_mae": metrics["id_test"]["all"]["force_mae"],
                       "ood_force_mae": metrics["ood_test"]["all"]["force_mae"],
                       "run_id": planned[0][0].run_id})
        if round_index == config.rounds:
            break
        picks = round_picks(config, rule, seed, round_index + 1, dirs, data, pool, labelled,
                            folder, device)
        if len(picks):  # the no-label control trains on, on unchanged data
            labelled = np.concatenate([labelled, picks])
            data = grown_dataset(data, pool, picks, config, folder / f"round{round_index + 1}")
    return points


def seed_candidates(config: ActiveLearningConfig, pool_size: int, seed: int) -> np.ndarray:
    """The pool indices a seed's rules may choose from: the whole pool, or a subset of
    ``pool.per_seed`` frames drawn with the seed (the same for every rule of that seed, so the
    rules stay paired)."""
    if config.pool.per_seed is None or config.pool.per_seed >= pool_size:
        return np.arange(pool_size)
    rng = np.random.default_rng([seed, config.pool.seed_offset])
    return np.sort(rng.choice(pool_size, size=config.pool.per_seed, replace=False))


def round_picks(config: ActiveLearningConfig, rule: str, seed: int, round_index: int,
                run_dirs: list[Path], data: Path, pool: Pool, labelled: np.ndarray,
                folder: Path, device: str = "cpu") -> np.ndarray:
    """The pool frames round ``round_index`` adds: read back if this round already picked
    (a resumed round never re-picks), else picked by ``rule`` and written once."""
    path = folder / f"round{round_index}" / "picks.json"
    if path.exists():
        return np.asarray(json.loads(path.read_text())["pool_indices"], dtype=np.int64)
    candidates = np.setdiff1d(seed_candidates(config, len(pool), seed), labelled)
    picks = pick(rule, candidates, config.batch, seed, round_index, run_dirs, data, pool,
                 device, config.batch_diversity)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps({
        "rule": rule, "seed": seed, "round": round_index, "pool_indices": picks.tolist(),
        "frames": [{"trajectory_id": pool.keys[i]["trajectory_id"],
                    "frame": int(pool.keys[i]["frame"])} for i in picks]}, indent=2))
    return picks


def pick(rule: str, candidates: np.ndarray, n: int, seed: int, round_index: int,
         run_dirs: list[Path], data: Path, pool: Pool, device: str = "cpu",
         diversity: str = "none") -> np.ndarray:
    """Apply one acquisition rule to the candidates (pool indices); ``diversity`` "clusters"
    spreads the batches of the score rules (ensemble, distance) over k-means clusters."""
    if rule == CONTROL:
        return np.array([], dtype=np.int64)
    if rule == "random":
        return pick_random(candidates, n, seed, round_index)
    if rule not in ("ensemble", "distance", "farthest_point"):
        raise GmdError(f"unknown acquisition rule {rule!r}: use {', '.join(RULES)} or "
                       f"{CONTROL}")
    if rule == "ensemble" and diversity == "none":
        sigma = pool_ensemble_spread(run_dirs, pool, device)
        return pick_largest(candidates, sigma[candidates], n)
    train, pool_features, pool_numbers = _soap_of(data, pool)
    frames = per_frame(pool_features, pool.graphs.n_atoms)
    if rule == "farthest_point":
        labelled = per_frame(train["features"], train["n_atoms"])
        return pick_farthest_points(candidates, frames[candidates], labelled, n)
    if rule == "ensemble":
        scores = pool_ensemble_spread(run_dirs, pool, device)
    else:
        manifold = TrainingManifold(train["features"], train["numbers"], ManifoldSettings(),
                                    train["trajectories"])
        atoms = manifold.atom_distances(pool_features, pool_numbers)
        scores, _ = frame_distances(atoms, pool.graphs.n_atoms)
    if diversity == "clusters":
        return pick_top_in_clusters(candidates, scores[candidates], frames[candidates], n,
                                    seed=1000 * seed + round_index)
    return pick_largest(candidates, scores[candidates], n)


def pool_ensemble_spread(run_dirs: list[Path], pool: Pool, device: str = "cpu") -> np.ndarray:
    """Per pool frame: the mean over its atoms of the members' force spread (eV/A)."""
    forces = []
    for run_dir in run_dirs:
        potential = load_potential(run_dir, device)
        dtype = DTYPES[json.loads((run_dir / "config.json").read_text())["training"]["dtype"]]
        with default_dtype(dtype):
            forces.append(predict(potential, pool.graphs, pool.keys, dtype=dtype).forces)
    _, sigma = ensemble_forces(forces)
    return per_frame(atom_sigma(sigma), pool.graphs.n_atoms)


def _soap_of(data: Path, pool: Pool) -> tuple[dict, np.ndarray, np.ndarray]:
    """SOAP descriptors of a round's training frames and of the pool, on one species list."""
    store = DatasetStore(data)
    soap = SoapSettings()
    train, keys = graphset_from_store(store, "train", soap.r_cut)
    soap = soap.model_copy(update={"species": species_of(train, pool.graphs)})
    return ({"features": soap_descriptors(train.structures(), soap), "numbers": train.numbers,
             "n_atoms": train.n_atoms,
             "trajectories": np.repeat([k["trajectory_id"] for k in keys], train.n_atoms)},
            soap_descriptors(pool.graphs.structures(), soap), pool.graphs.numbers)


def grown_dataset(data: Path, pool: Pool, picks: np.ndarray, config: ActiveLearningConfig,
                  folder: Path) -> Path:
    """``data`` plus the picked pool frames, labelled now by the reference method, in its
    train split (``data/extend.py``: built aside and renamed, never half a round)."""
    target = folder / "data.db"
    if target.exists():
        return target
    method = resolve_reference(ReferenceConfig(name=config.reference))

    def labelled():
        for index in picks:
            row = pool.rows[int(index)]
            energy, forces = label_with_retries(pool.store.to_atoms(row), method)
            keys = dict(row.key_value_pairs)
            keys.update(split="train", trajectory_id=f"pool-{row.trajectory_id}",
                        source="active-learning")
            yield LabelledFrame(row.numbers, row.positions, energy, forces, keys)

    return extended_dataset(data, labelled(), target)


def _uncertainty_of_seed(config: ActiveLearningConfig, task: str, base_path: Path,
                         out_dir: Path, seed: int, say: Callable[[str], None]) -> Path:
    """The round-0 ensemble of one seed (the ensemble rule's members, trained on the task's
    own training set): its uncertainty calibration on the ID and OOD test frames."""
    dataset_hash = DatasetStore(base_path).content_hash()
    run_dirs = [run_config(config.model, task, _member_seed(seed, member),
                           dataset_hash).run_dir(out_dir / "runs")
                for member in range(config.ensemble_size)]
    out = out_dir / "uncertainty" / f"round0-seed{seed}"
    summary = uncertainty_for_runs(run_dirs, out)
    say(f"uncertainty of the round-0 ensemble, seed {seed}: best OOD signal "
        f"{summary['best_ood_signal']} -> {out}")
    return out


def rebuild_active_learning_report(folder: Path) -> Path:
    """The report of a finished study rebuilt from its saved files alone (``curve.json`` and
    the config inside ``active_learning.json``; the round-0 uncertainty folders as saved): no
    model, no label. Used when the analysis changes after the study ran.

    A study archive still being filled (``study.json`` and ``units/``, no ``curve.json``) gets
    an *interim* report over the seeds whose every rule is archived, so the comparisons stay
    paired; its header says how many seeds of how many it rests on."""
    folder = Path(folder)
    archived = StudyArchive(folder).saved_config()
    if archived is not None:  # a study archive: its config is study.json
        if not (folder / "curve.json").exists():
            return _interim_report(folder)
        curve = json.loads((folder / "curve.json").read_text())
        config = ActiveLearningConfig.model_validate(archived)
        return write_active_learning_report(curve, config.model_dump(mode="json"), folder)
    for name in ("curve.json", "active_learning.json"):
        if not (folder / name).exists():
            raise GmdError(f"{folder / name} does not exist: {folder} is not a finished "
                           "active-learning study (run `gmd active-learn` first)")
    curve = json.loads((folder / "curve.json").read_text())
    saved = json.loads((folder / "active_learning.json").read_text())["config"]
    config = ActiveLearningConfig.model_validate(saved)  # defaults for fields added since
    return write_active_learning_report(curve, config.model_dump(mode="json"), folder)


def _interim_report(folder: Path) -> Path:
    """The report of an unfinished study archive, over its complete seeds only."""
    archive = StudyArchive(folder)
    config = ActiveLearningConfig.model_validate(archive.saved_config())
    expected = [(rule, seed) for seed in config.seeds for rule in config.rules]
    done = {key: unit for key in expected if (unit := archive.unit(*key)) is not None}
    complete = [seed for seed in config.seeds
                if all((rule, seed) in done for rule in config.rules)]
    if not complete:
        raise GmdError(f"archive {folder} holds {len(done)} of {len(expected)} rule-seed units "
                       "and no seed with every rule yet: no paired comparison to report")
    curve = [point for seed in complete for rule in config.rules
             for point in done[rule, seed].points]
    note = (f"**Interim report**: {len(complete)} of {len(config.seeds)} seeds have every rule "
            f"archived ({len(done)} of {len(expected)} rule-seed units); the tables and tests "
            "below rest on those seeds alone and will change as the study goes on. Its "
            "verdicts are a look at the data so far, not the study's test: the study was "
            f"planned at {len(config.seeds)} seeds, and a difference called at every look "
            "would be called falsely more often than the 5% each test allows (each look is "
            f"another chance), so the verdict is the one at {len(config.seeds)} seeds.")
    shown = config.model_copy(update={"seeds": complete}).model_dump(mode="json")
    return write_active_learning_report(curve, shown, folder, note=note)
