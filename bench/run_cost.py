"""Measured cost of a run matrix (`gmd run standard`, `gmd run moe-ablation`) on this machine.

A full `gmd run standard` takes tens of hours on 2 cores, longer than a working session, so
this bench measures each component and adds them up (the README quotes its output):

- data: the cost estimator of `gmd data build` (one timed GFN2-xTB call per molecule, scaled by
  the reference calls its trajectories need) for each task at the matrix's preset;
- training: for every model entry of the matrix, one real `train_run` of K epochs on the
  quick fragment_duplication dataset; the median time between successive epochs (train + val,
  checkpoint included) divided by the atoms it processes is the rate. The matrix's
  training time is that rate x the atoms of each task's train + val splits x its epochs x its
  seeds, plus the start-up (time to the first epoch's end minus one epoch) per run;
- evaluation: the run's evaluation per atom of its test splits, scaled likewise.

Scaling by atoms assumes a model's cost grows linearly with atoms (true for these cutoff
graphs at these sizes, to within the machine's noise of ~30%).

GPU: where ``bench/gpu_check.py`` has measured a model's GPU/CPU training speed ratio on a GPU
(``bench/gpu_rates.json``), the model's hours are also given divided by that ratio, with the GPU
named; models without a measured ratio get none (no guess).

Active-learning studies (``--study NAME``): the same rates, applied to what the loop trains per
seed (round 0: the ensemble's members at full training; rounds 1..R: every rule fine-tunes its
model, the ensemble rule its M members, on the train set grown by the labels so far), plus the
base and pool datasets and one reference call per picked frame. Where the study's archive
holds finished units, their own wall times follow: each rule's median per unit, measured /
projected over the complete seeds, and the hours the missing units need
(``gmdbench/pipeline/study_cost.py``).

Usage: python bench/run_cost.py [--matrix standard] [--epochs 4] [--models schnet,mace]
       [--gpu-rates bench/gpu_rates.json]
       python bench/run_cost.py --study fragment-duplication-powered
       (needs the quick dataset: run `make quick` first, or it is built here)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from gmdbench.chem.molecules import atomic_numbers_of
from gmdbench.config import load_preset
from gmdbench.data.store import DatasetStore
from gmdbench.pipeline.matrix import load_matrix
from gmdbench.runner.runs import RunConfig
from gmdbench.tasks.spec import load_task

QUICK_DATA = Path("results/quick/datasets/fragment_duplication-quick-seed0.db")


def atoms_per_split(task_name: str, preset_name: str) -> dict[str, int]:
    """Atoms (hydrogens included) the preset will put in each split of a task."""
    task, preset = load_task(task_name), load_preset(preset_name)
    counts = preset.trajectories
    frames = preset.sampler.frames_per_trajectory
    atoms = {"train": 0, "val": 0, "id_test": 0, "ood_test": 0}
    for molecule in task.molecules():
        n_atoms = len(atomic_numbers_of(molecule.smiles))  # with H (the quick rates count H)
        if molecule.role == "train":
            for split in ("train", "val", "id_test"):
                atoms[split] += getattr(counts, split) * frames * n_atoms
        else:
            atoms["ood_test"] += counts.ood_test * frames * n_atoms
    return atoms


def quick_atoms(store: DatasetStore) -> dict[str, int]:
    return {split: sum(row.natoms for row in store.rows(split=split))
            for split in ("train", "val", "id_test", "ood_test")}


def timed_run(run: RunConfig, data: Path, root: Path) -> tuple[float, float, float]:
    """(seconds per epoch, start-up seconds, evaluation seconds) of one real run."""
    import itertools
    import statistics

    from gmdbench.runner.executor import evaluate_run, train_run
    from gmdbench.runner.results import ResultsStore

    ends: list[float] = []
    started = time.perf_counter()
    run_dir = train_run(run, data, root, on_epoch=lambda epoch, metrics: ends.append(
        time.perf_counter()))
    trained = time.perf_counter() - started
    epoch = statistics.median(b - a for a, b in itertools.pairwise(ends)) if len(ends) > 1 else 0.0
    start = (ends[0] - started - epoch) if ends else trained
    started = time.perf_counter()
    evaluate_run(run_dir, ResultsStore(root / "results.db"))
    return epoch, max(start, 0.0), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", default="standard", help="a built-in run or a run YAML")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--models", default=None, help="comma-separated subset of entries")
    parser.add_argument("--gpu-rates", type=Path, default=Path("bench/gpu_rates.json"))
    parser.add_argument("--study", default=None, help="an active-learning study instead")
    parser.add_argument("--archive", type=Path, default=None,
                        help="the study's archive (default reference/active-learning/STUDY)")
    args = parser.parse_args()
    gpu = json.loads(args.gpu_rates.read_text()) if args.gpu_rates.exists() else None

    from gmdbench.data.estimate import estimate_cost
    from gmdbench.models.registry import model_config
    from gmdbench.reference.registry import ReferenceConfig, resolve_reference

    if args.study:
        study_cost(args.study, args.epochs, args.archive)
        return
    matrix = load_matrix(args.matrix)
    if not QUICK_DATA.exists():
        from gmdbench.data.generate import build_dataset

        build_dataset(load_task("fragment_duplication"), load_preset("quick"), ReferenceConfig(),
                      0, QUICK_DATA, workers=2)
    store = DatasetStore(QUICK_DATA)
    quick = quick_atoms(store)
    standard = {task: atoms_per_split(task, matrix.preset) for task in matrix.tasks}
    method = resolve_reference(ReferenceConfig(name=matrix.reference))

    data_hours = 0.0
    print(f"{'task':24s} {'frames':>7s} {'data CPU-h':>10s}")
    for task in matrix.tasks:
        cost = estimate_cost(load_task(task), load_preset(matrix.preset), method)
        data_hours += cost.cpu_seconds / 3600
        print(f"{task:24s} {cost.frames:7d} {cost.cpu_seconds / 3600:10.2f}")
    wanted = set(args.models.split(",")) if args.models else None
    total_hours = gpu_hours = 0.0
    unmeasured: list[str] = []
    print(f"\n{'model':36s} {'regime':16s} {'s/epoch quick':>13s} {'start s':>8s} "
          f"{'epochs':>6s} {'CPU hours (tasks x seeds)':>26s} {'GPU hours':>10s}")
    timed: dict[str, tuple[float, float, float]] = {}  # entries that differ only in data/seeds
    train_trajectories = load_preset(matrix.preset).trajectories.train
    with tempfile.TemporaryDirectory() as tmp:
        for entry in matrix.models:
            if wanted and entry.name not in wanted:
                continue
            options = model_config(entry.name, entry.options, size=entry.size).model_dump(
                exclude={"name"})
            trains = entry.regime in ("scratch", "fine-tune", "fine-tune-head")
            training = entry.training.model_copy(update={"epochs": args.epochs if trains else 1})
            run = RunConfig(task="fragment_duplication", model=entry.name,
                            model_options=options, regime=entry.regime, training=training,
                            seed=0, dataset_hash=store.content_hash())
            key = run.model_dump_json(exclude={"training"}) + training.model_dump_json()
            if key not in timed:
                timed[key] = timed_run(run, QUICK_DATA, Path(tmp) / str(len(timed)))
            epoch, start, evaluation = timed[key]
            epochs = entry.training.epochs if trains else 0
            per_train_atom = epoch / (quick["train"] + quick["val"])
            per_test_atom = evaluation / (quick["id_test"] + quick["ood_test"])
            # a data-size point trains on the first N train trajectories of each molecule
            share = (entry.train_trajectories or train_trajectories) / train_trajectories
            hours = sum(
                (start + epochs * per_train_atom * (share * atoms["train"] + atoms["val"])
                 + per_test_atom * (atoms["id_test"] + atoms["ood_test"]))
                * len(entry.seeds or matrix.seeds)
                for atoms in standard.values()) / 3600
            total_hours += hours
            ratio = (gpu or {}).get("models", {}).get(entry.name, {}).get("gpu_cpu_ratio")
            if ratio:
                gpu_hours += hours / ratio
            else:
                unmeasured.append(entry.name)
            label = entry.name + "".join(f" {v}" for v in entry.options.values()) + (
                f" {entry.size}" if entry.size else "") + (
                f" t{entry.train_trajectories}" if entry.train_trajectories else "") + (
                f" {entry.split}" if entry.split != "trajectory" else "")
            gpu_cell = f"{hours / ratio:10.1f}" if ratio else f"{'-':>10s}"
            print(f"{label:36s} {entry.regime:16s} {epoch:13.1f} {start:8.1f} "
                  f"{epochs:6d} {hours:26.1f} {gpu_cell}", flush=True)
    print(f"\ndata {data_hours:.1f} CPU-h (wall ~{data_hours / 2:.1f} h on 2 workers); "
          f"training + evaluation {total_hours:.1f} h; total ~{data_hours / 2 + total_hours:.0f} h "
          "wall on 2 cores")
    if gpu is None:
        print("GPU: no measured GPU rate (run bench/gpu_check.py where a GPU is lent)")
    else:
        gpus = {m.get("gpu") for m in gpu["models"].values() if m.get("gpu")}
        print(f"GPU ({', '.join(sorted(gpus))}, measured {gpu['measured']}): training + "
              f"evaluation {gpu_hours:.1f} h for the models with a measured ratio; no GPU "
              f"rate for: {', '.join(sorted(set(unmeasured))) or 'none'}")


def _quick_store() -> DatasetStore:
    if not QUICK_DATA.exists():
        from gmdbench.data.generate import build_dataset
        from gmdbench.reference.registry import ReferenceConfig

        build_dataset(load_task("fragment_duplication"), load_preset("quick"), ReferenceConfig(),
                      0, QUICK_DATA, workers=2)
    return DatasetStore(QUICK_DATA)


def study_cost(name: str, epochs: int, archive: Path | None = None) -> None:
    """The projected wall time of an active-learning study on this machine (see the module
    docstring); prints the parts and the total, then what the units in ``archive`` (default
    reference/active-learning/NAME) took and what the missing ones need."""
    from gmdbench.data.estimate import estimate_cost
    from gmdbench.models.registry import model_config
    from gmdbench.pipeline.active_learning import _pool_preset, load_study
    from gmdbench.pipeline.study_cost import cost_lines
    from gmdbench.pipeline.study_cost import study_cost as archived_cost
    from gmdbench.reference.registry import ReferenceConfig, resolve_reference
    from gmdbench.runner.study_archive import StudyArchive

    study = load_study(name)
    store = _quick_store()
    quick = quick_atoms(store)
    atoms = atoms_per_split(study.task, study.preset)
    method = resolve_reference(ReferenceConfig(name=study.reference))
    task = load_task(study.task)
    data = estimate_cost(task, load_preset(study.preset), method).cpu_seconds
    pool = estimate_cost(task, _pool_preset(study), method)
    entry = study.model
    options = model_config(entry.name, entry.options, size=entry.size).model_dump(
        exclude={"name"})
    run = RunConfig(task="fragment_duplication", model=entry.name, model_options=options,
                    regime=entry.regime, training=entry.training.model_copy(
                        update={"epochs": epochs}), seed=0, dataset_hash=store.content_hash())
    with tempfile.TemporaryDirectory() as tmp:
        epoch, start, evaluation = timed_run(run, QUICK_DATA, Path(tmp))
    per_train_atom = epoch / (quick["train"] + quick["val"])
    per_test_atom = evaluation / (quick["id_test"] + quick["ood_test"])
    base_atoms = atoms["train"] + atoms["val"]
    test_seconds = per_test_atom * (atoms["id_test"] + atoms["ood_test"])
    ood_molecule_atoms = atoms["ood_test"] / max(
        1, sum(m.role != "train" for m in task.molecules())) / (
        load_preset(study.preset).trajectories.ood_test
        * load_preset(study.preset).sampler.frames_per_trajectory)
    members = study.ensemble_size if "ensemble" in study.rules else 1
    seconds = members * (start + study.model.training.epochs * per_train_atom * base_atoms
                         + test_seconds)
    for rule in study.rules:
        size = study.ensemble_size if rule == "ensemble" else 1
        for round_index in range(1, study.rounds + 1):
            added = 0 if rule == "no_label" else round_index * study.batch * ood_molecule_atoms
            seconds += size * (start + study.fine_tune.epochs * per_train_atom
                               * (base_atoms + added) + test_seconds)
    per_seed_hours = seconds / 3600
    labels = sum(rule != "no_label" for rule in study.rules) * study.rounds * study.batch
    label_hours = labels * pool.cpu_seconds / max(pool.reference_calls, 1) / 3600 * len(
        study.seeds)  # one reference call per picked frame
    total = per_seed_hours * len(study.seeds) + (data + pool.cpu_seconds) / 3600 / 2 + label_hours
    print(f"study {study.name}: {entry.name} ({entry.size}) on {study.task} ({study.preset}), "
          f"{len(study.rules)} rules x {len(study.seeds)} seeds x {study.rounds} rounds")
    print(f"rate: {epoch:.2f} s/epoch on the quick set ({quick['train'] + quick['val']} atoms), "
          f"start-up {start:.1f} s, evaluation {evaluation:.1f} s")
    print(f"datasets: base {data / 3600:.2f} CPU-h, pool {pool.frames} frames "
          f"{pool.cpu_seconds / 3600:.2f} CPU-h (wall on 2 workers ~"
          f"{(data + pool.cpu_seconds) / 3600 / 2:.2f} h)")
    print(f"training + evaluation per seed {per_seed_hours:.2f} h; labelling "
          f"{label_hours:.2f} h in all")
    print(f"total ~{total:.1f} h wall on 2 cores")
    folder = archive or Path("reference/active-learning") / study.name
    saved = StudyArchive(folder)
    units = [saved.unit(rule, seed) for seed in study.seeds for rule in study.rules]
    walls = [(unit.rule, unit.seed, unit.wall_seconds) for unit in units if unit is not None]
    print(f"{folder}:")
    for line in cost_lines(archived_cost(study.rules, study.seeds, walls, per_seed_hours)):
        print(f"  {line}")


if __name__ == "__main__":
    main()
