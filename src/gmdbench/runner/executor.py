"""Execute a run locally: build the model, train (resuming), predict, score, record.

Steps are cached in the run directory: ``best.pt`` + ``training.json`` mark training done;
``predictions_<split>.npz`` are rewritten by evaluation. Re-executing a finished run only
re-reads its files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from gmdbench.data.graphs import GraphSet, graphset_from_store
from gmdbench.data.store import DatasetStore
from gmdbench.errors import DatasetMismatchError, GmdError
from gmdbench.evaluation.evaluate import Predictions, metrics_per_molecule, predict
from gmdbench.models.base import Potential
from gmdbench.models.registry import build_model, model_config
from gmdbench.provenance import package_versions
from gmdbench.runner.matrix import RunConfig
from gmdbench.runner.results import ResultsStore
from gmdbench.training.reference_energies import (
    composition_matrix,
    fit_rank,
    force_scale,
    reference_energies,
)
from gmdbench.training.trainer import DTYPES, train

EVALUATED_SPLITS = ("id_test", "ood_test")
_VERSIONED = ("gmd-bench", "torch", "fairchem-core", "mace-torch", "nequip", "torchani",
              "e3nn", "ase", "tblite", "numpy")


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Some library code creates tensors in the default dtype; float64 runs need it set."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def load_splits(store: DatasetStore, cutoff: float, names: tuple[str, ...]
                ) -> dict[str, tuple[GraphSet, list[dict]]]:
    """Only the splits a step needs: training builds train and val graphs, evaluation the tests."""
    splits = {}
    for split in names:
        graphs, keys = graphset_from_store(store, split, cutoff)
        if len(graphs) == 0:
            raise GmdError(f"dataset {store.path} has no frames in split {split!r}")
        splits[split] = (graphs, keys)
    return splits


def build_potential(run: RunConfig, train_set: GraphSet, isolated: dict[str, float] | None,
                    run_dir: Path) -> Potential:
    """The model of a run, seeded, with reference energies and scale from the train split.

    What the network's shape depends on (elements, neighbour statistics) is written to
    ``model_build.json`` so that :func:`load_potential` can rebuild it without the dataset.
    """
    elements = train_set.elements
    statistics = {"avg_num_neighbors": float(np.mean(train_set.n_edges / train_set.n_atoms))}
    (run_dir / "model_build.json").write_text(json.dumps(
        {"elements": elements, "statistics": statistics}))
    torch.manual_seed(run.seed)
    network = build_model(model_config(run.model, run.model_options), elements, statistics)
    pretrained = network.metadata.pretrained
    if pretrained == (run.regime == "scratch"):
        allowed = "zero-shot, zero-shot-refit, fine-tune, fine-tune-head" if pretrained \
            else "scratch"
        raise GmdError(f"model {run.model!r} cannot run regime {run.regime!r} "
                       f"(its regimes: {allowed})")
    if not pretrained:
        energies = reference_energies(train_set, elements, run.training.reference_energies,
                                      isolated)
        return Potential(network, energies, scale=force_scale(train_set))
    potential = Potential(network, {}, scale=1.0)
    if run.regime != "zero-shot":
        potential.atomic_energies.data = offsets_on_top(potential, train_set, elements)
    if run.regime.startswith("fine-tune") and not any(True for _ in network.parameters()):
        raise GmdError(f"model {run.model!r} has no weights to fine-tune; use zero-shot or "
                       "zero-shot-refit")
    if run.regime == "fine-tune-head":
        head = {id(p) for p in network.head_parameters()}
        for parameter in network.parameters():
            parameter.requires_grad_(id(parameter) in head)
    return potential


def reference_energy_summary(run: RunConfig, potential: Potential, train_set: GraphSet
                             ) -> dict[str, object]:
    """Which E0 a run used, as its training summary (and so every report row) records it."""
    if potential.metadata.pretrained:
        kind = "model's own" if run.regime == "zero-shot" else "fitted offsets on the model"
        return {"reference_energies_kind": kind, "reference_energies_rank_deficient": False}
    kind = run.training.reference_energies
    deficient = kind == "fit" and fit_rank(train_set, train_set.elements) < len(
        train_set.elements)
    return {"reference_energies_kind": kind, "reference_energies_rank_deficient": deficient}


def offsets_on_top(potential: Potential, train_set: GraphSet, elements: list[int]
                   ) -> torch.Tensor:
    """Per-element energy offsets fitted (least squares) to train residuals of a pretrained model.

    A pretrained model predicts total energies of its own level of theory; the offsets map them
    onto the dataset's, which is what "zero-shot with refitted offsets" means in reports.
    """
    predicted = []
    for start in range(0, len(train_set), 32):
        batch = train_set.gather(np.arange(start, min(start + 32, len(train_set))),
                                 dtype=torch.get_default_dtype())
        predicted.append(potential(batch)["energy"].detach().numpy())
    residual = train_set.energy - np.concatenate(predicted)
    solution, *_ = np.linalg.lstsq(composition_matrix(train_set, elements), residual, rcond=None)
    table = torch.zeros(119, dtype=torch.float64)
    table[elements] = torch.as_tensor(solution, dtype=torch.float64)
    return table


def read_run_config(run_dir: Path) -> tuple[RunConfig, dict]:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise GmdError(f"{run_dir} is not a run directory (no config.json)")
    from pydantic import ValidationError

    try:
        config = json.loads(path.read_text())
        run = RunConfig.model_validate({k: v for k, v in config.items() if k != "dataset_path"})
    except (json.JSONDecodeError, ValidationError) as error:
        raise GmdError(f"{path} is not a valid run config: {error}") from error
    return run, config


def load_potential(run_dir: Path) -> Potential:
    """The trained potential of a run (best weights on val), in the run's precision."""
    run_dir = Path(run_dir)
    run, _ = read_run_config(run_dir)
    if not (run_dir / "best.pt").exists():
        raise GmdError(f"run {run_dir} has no trained weights (best.pt)")
    build = json.loads((run_dir / "model_build.json").read_text())
    dtype = DTYPES[run.training.dtype]
    with default_dtype(dtype):
        torch.manual_seed(run.seed)
        network = build_model(model_config(run.model, run.model_options), build["elements"],
                              build["statistics"])
        potential = Potential(network, {})
        potential.to(dtype)
        potential.load_state_dict(torch.load(run_dir / "best.pt", weights_only=True))
    return potential


def graph_cutoff(run: RunConfig) -> float:
    config = model_config(run.model, run.model_options)
    return float(getattr(config, "cutoff", None) or config.r_max)


def train_run(run: RunConfig, data: Path, runs_root: Path,
              on_epoch: Callable[[int, dict], None] | None = None) -> Path:
    """Train (or resume, or skip if done) a run; return its directory."""
    store = DatasetStore(data)
    if store.content_hash() != run.dataset_hash:
        raise DatasetMismatchError(f"dataset {data} does not have hash {run.dataset_hash}")
    run_dir = run.run_dir(runs_root)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(
        {**run.resolved(), "dataset_path": str(Path(data).resolve())}, indent=2))
    summary_path = run_dir / "training.json"
    if summary_path.exists() and (run_dir / "best.pt").exists():
        return run_dir
    dtype = DTYPES[run.training.dtype]
    with default_dtype(dtype):
        splits = load_splits(store, graph_cutoff(run), ("train", "val"))
        potential = build_potential(run, splits["train"][0],
                                    store.metadata.get("isolated_atom_energies"), run_dir)
        started = time.perf_counter()
        if run.regime.startswith("zero-shot"):
            potential.to(dtype)
            torch.save(potential.state_dict(), run_dir / "best.pt")
            summary = {"epochs_run": 0, "best_epoch": -1, "best_val_loss": None,
                       "train_seconds": 0.0, "stopped_early": False, "history": []}
        else:
            summary = train(potential, splits["train"][0], splits["val"][0], run.training,
                            run.seed, run_dir, on_epoch)
    summary["wall_seconds"] = time.perf_counter() - started
    summary.update(reference_energy_summary(run, potential, splits["train"][0]))
    summary["reference_energies"] = {str(z): float(e) for z, e in zip(
        range(119), potential.atomic_energies.tolist(), strict=True) if e != 0.0}
    summary["scale"] = float(potential.scale)
    summary["n_parameters"] = sum(p.numel() for p in potential.parameters())
    summary["n_trained_parameters"] = 0 if run.regime.startswith("zero-shot") else sum(
        p.numel() for p in potential.parameters() if p.requires_grad)
    summary_path.write_text(json.dumps(summary, indent=2))
    return run_dir


def evaluate_run(run_dir: Path, results: ResultsStore) -> dict:
    """Predict id_test and ood_test with the best weights; record metrics in ``results``."""
    run, config = read_run_config(run_dir)
    summary_path = run_dir / "training.json"
    if not summary_path.exists():
        raise GmdError(f"run {run_dir} has not finished training (no training.json)")
    summary = json.loads(summary_path.read_text())
    store = DatasetStore(config["dataset_path"])
    dtype = DTYPES[run.training.dtype]
    started = time.perf_counter()
    metrics = {}
    potential = load_potential(run_dir)
    with default_dtype(dtype):
        splits = load_splits(store, graph_cutoff(run), EVALUATED_SPLITS)
        for split in EVALUATED_SPLITS:
            graphs, keys = splits[split]
            predictions = predict(potential, graphs, keys, dtype=dtype)
            predictions.save(run_dir / f"predictions_{split}.npz")
            metrics[split] = metrics_per_molecule(predictions)
        if hasattr(potential.network, "route"):  # a mixture of experts: routing metrics too
            _record_routing(potential, splits, store, run_dir, metrics, dtype)
    timings = {"train_seconds": summary["train_seconds"],
               "evaluate_seconds": time.perf_counter() - started}
    results.record_run(
        run_id=run.run_id, task=run.task, model=run.model, regime=run.regime, seed=run.seed,
        dataset_hash=run.dataset_hash, level_of_theory=store.metadata.get("level_of_theory"),
        run_dir=run_dir.resolve(), config=run.resolved(),
        model_metadata=potential.metadata.model_dump(),
        versions=package_versions(_VERSIONED), timings=timings,
        training={k: v for k, v in summary.items() if k != "history"}, metrics=metrics)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _record_routing(potential: Potential, splits: dict, store: DatasetStore, run_dir: Path,
                    metrics: dict, dtype: torch.dtype) -> None:
    """routing.json, the routing scalars in each split's metrics, and the atoms-by-expert plot."""
    from gmdbench.analysis.routing import flat_routing_metrics, plot_atom_experts, routing_metrics
    from gmdbench.tasks.spec import TaskSpec

    fragments = TaskSpec.model_validate(store.metadata["task"]).fragment_smarts()
    routing = {}
    for split, (graphs, keys) in splits.items():
        routing[split] = routing_metrics(potential.network, graphs, keys, fragments, dtype=dtype,
                                         energy_scale=float(potential.scale))
        metrics[split]["all"].update(flat_routing_metrics(routing[split]))
    (run_dir / "routing.json").write_text(json.dumps(
        {"fragments": fragments, **routing}, indent=2))
    shown = {label: (splits[split][0], 0, splits[split][1][0]["smiles"])
             for label, split in (("ID", "id_test"), ("OOD", "ood_test"))}
    plot_atom_experts(potential.network, shown, run_dir / "routing_atoms.png", dtype=dtype)


def load_predictions(run_dir: Path, split: str) -> Predictions:
    return Predictions.load(Path(run_dir) / f"predictions_{split}.npz")


def _train_in_worker(run: RunConfig, data: Path, runs_root: Path, threads: int) -> Path:
    """A Dask task: train one run with a bounded number of torch threads."""
    torch.set_num_threads(threads)
    return train_run(run, data, runs_root)


def run_matrix(matrix, out_dir: Path, workers: int = 2, executor: str = "local",
               scheduler: str | None = None,
               on_event: Callable[[str], None] | None = None) -> Path:
    """Build each task's dataset, train and evaluate every (model, seed), write the report.

    ``executor="local"`` trains runs one after another in this process; ``"dask"`` submits one
    task per run to an embedded LocalCluster (``workers`` processes, one torch thread each) or
    to ``scheduler``, whose workers must see ``out_dir`` (a shared filesystem), then evaluates
    here. Everything is cached: datasets resume, finished runs are skipped, results replaced.
    Returns the results store path.
    """
    from gmdbench.config import load_preset
    from gmdbench.data.generate import build_dataset, dask_client
    from gmdbench.reference.registry import ReferenceConfig
    from gmdbench.report.build import build_report
    from gmdbench.tasks.spec import load_task

    if executor not in ("local", "dask"):
        raise GmdError(f"unknown executor {executor!r}: local or dask")
    say = on_event or (lambda message: None)
    out_dir = Path(out_dir).resolve()
    results = ResultsStore(out_dir / "results.db")
    preset = load_preset(matrix.preset)
    planned: list[tuple[RunConfig, Path]] = []
    for task_name in matrix.tasks:
        task = load_task(task_name)
        data = out_dir / "datasets" / f"{task.name}-{preset.name}-seed{matrix.data_seed}.db"
        say(f"dataset {task.name} ({preset.name}) -> {data}")
        report = build_dataset(task, preset, ReferenceConfig(name=matrix.reference),
                               matrix.data_seed, data, workers=workers, scheduler=scheduler)
        if report.failures:
            raise GmdError(f"dataset {data}: {len(report.failures)} frame(s) failed; see "
                           f"`gmd data info {data}`")
        dataset_hash = DatasetStore(data).content_hash()
        if matrix.distance_statistics:
            from gmdbench.distance.analysis import write_dataset_distance

            say(f"SOAP distances of {task.name}'s test frames -> "
                f"{write_dataset_distance(data)}")
        for entry in matrix.models:
            options = model_config(entry.name, entry.options, size=entry.size).model_dump(
                exclude={"name"})
            for seed in matrix.seeds:
                planned.append((RunConfig(task=task.name, model=entry.name,
                                          model_options=options, regime=entry.regime,
                                          training=entry.training, seed=seed,
                                          dataset_hash=dataset_hash), data))
    runs_root = out_dir / "runs"
    if executor == "local":
        for run, data in planned:
            say(f"{run.regime} {run.model} seed {run.seed} on {run.task}")
            evaluate_run(train_run(run, data, runs_root), results)
    else:
        from dask.distributed import as_completed

        with dask_client(workers, scheduler) as client:
            futures = [client.submit(_train_in_worker, run, data, runs_root, 1, pure=False,
                                     key=f"train-{run.run_id}") for run, data in planned]
            say(f"submitted {len(futures)} runs to Dask")
            for future in as_completed(futures):
                run_dir = future.result()
                evaluate_run(run_dir, results)
                say(f"evaluated {run_dir.name}")
    build_report(results.path, out_dir / "report")
    return results.path
