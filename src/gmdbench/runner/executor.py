"""One run, step by step: train (resuming, or skipping if done), then evaluate and record.

Steps are cached in the run directory: ``best.pt`` + ``training.json`` mark training done;
``predictions_<split>.npz`` are rewritten by evaluation. Re-executing a finished run only
re-reads its files. Every file of a run directory is written atomically.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gmdbench.analysis.routing import flat_routing_metrics, plot_atom_experts, routing_metrics
from gmdbench.data.completeness import require_complete
from gmdbench.data.graphs import GraphSet
from gmdbench.data.store import DatasetStore
from gmdbench.errors import DatasetMismatchError, GmdError
from gmdbench.evaluation.evaluate import metrics_per_molecule, predict
from gmdbench.evaluation.metrics import energy_decomposition
from gmdbench.files import load_state, load_torch, save_torch, write_text
from gmdbench.models.base import DTYPES, Potential, default_dtype, resolve_device
from gmdbench.provenance import package_versions
from gmdbench.runner.results import ResultsStore
from gmdbench.runner.runs import (
    RunConfig,
    build_potential,
    graph_cutoff,
    load_potential,
    load_splits,
    read_run_config,
    reference_energy_summary,
)
from gmdbench.tasks.spec import TaskSpec
from gmdbench.tasks.split import derive_seed
from gmdbench.training.trainer import train, training_status

EVALUATED_SPLITS = ("id_test", "ood_test")
CURVE_POINTS = 10  # learning-curve points per run (about: the first epoch, then every k)
CURVE_FRAMES = 200  # frames of each test split the curve scores
CURVE_SEED = 0  # the curve's frames are the same for every run of a dataset
_VERSIONED = ("gmd-bench", "torch", "fairchem-core", "mace-torch", "nequip", "torchani",
              "e3nn", "ase", "tblite", "numpy")


def train_run(run: RunConfig, data: Path, runs_root: Path,
              on_epoch: Callable[[int, dict], None] | None = None,
              device: str | torch.device = "cpu") -> Path:
    """Train (or resume, or skip if done) a run on ``device``; return its directory. The
    device is recorded in ``training.json`` but is not part of the run's hash: a run trained
    on a GPU and the same run on a CPU are one run (resuming on another device is allowed)."""
    device = resolve_device(device)
    store = DatasetStore(data)
    _check_dataset(store, run, f"run {run.run_id}")
    run_dir = run.run_dir(runs_root)
    summary_path = run_dir / "training.json"
    if summary_path.exists() and (run_dir / "best.pt").exists():
        return run_dir
    if summary_path.exists() and not run.regime.startswith("zero-shot"):
        # finished, best weights gone: the checkpoint holds the last epoch's, not the best's
        raise GmdError(f"run {run_dir} finished training but its best weights (best.pt) are "
                       "missing; they cannot be rebuilt from the last checkpoint (the final "
                       f"epoch's): delete the run directory {run_dir} and run the same "
                       "command to train it again")
    created = not run_dir.exists()
    try:
        return _train(run, store, run_dir, on_epoch, device)
    except BaseException:
        # a run that failed before its first epoch finished leaves nothing behind
        if created and not (run_dir / "checkpoint.pt").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _check_dataset(store: DatasetStore, run: RunConfig, who: str) -> None:
    """Refuse a dataset whose build has not finished, or whose content is not the one a run
    was made with (rebuilt in place)."""
    require_complete(store)
    actual = store.content_hash()
    if not run.accepts_dataset(actual):
        raise DatasetMismatchError(
            f"dataset {store.path} has hash {actual[:16]} but {who} was made with "
            f"{run.dataset_hash[:16]} (the dataset changed since): train a new run on it")


def _train(run: RunConfig, store: DatasetStore, run_dir: Path,
           on_epoch: Callable[[int, dict], None] | None, device: torch.device) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.json", json.dumps(
        {**run.stored(), "dataset_path": str(Path(store.path).resolve())}, indent=2))
    summary_path = run_dir / "training.json"
    dtype = DTYPES[run.training.dtype]
    with default_dtype(dtype):
        splits = load_splits(store, graph_cutoff(run), ("train", "val"), run)
        potential = build_potential(run, splits["train"][0],
                                    store.metadata.get("isolated_atom_energies"), run_dir,
                                    device)
        if run.init_from is not None:
            _start_from(potential, run_dir.parent / run.init_from)
        curve_sets = _curve_sets(store, run)
        started = time.perf_counter()
        if run.regime.startswith("zero-shot"):
            potential.to(dtype)
            save_torch(potential.state_dict(), run_dir / "best.pt")
            summary = {"epochs_run": 0, "best_epoch": -1, "best_val_loss": None,
                       "train_seconds": 0.0, "stopped_early": False, "history": []}
        else:
            summary = train(potential, splits["train"][0], splits["val"][0], run.training,
                            run.seed, run_dir, on_epoch, device,
                            observe=lambda model: observe_curve(model, curve_sets, dtype),
                            observe_every=max(1, run.training.epochs // CURVE_POINTS))
            summary["learning_curve_frames"] = {split: len(graphs) for split, (graphs, _)
                                                in curve_sets.items()}
    summary["wall_seconds"] = time.perf_counter() - started
    summary["dataset_content_hash"] = store.content_hash()  # the file trained on, exactly
    summary["device"] = _device_name(device)
    summary.update(reference_energy_summary(run, potential, splits["train"][0],
                                            store.metadata.get("isolated_atom_energies")))
    summary["reference_energies"] = {str(z): float(e) for z, e in zip(
        range(119), potential.atomic_energies.tolist(), strict=True) if e != 0.0}
    summary["scale"] = float(potential.scale)
    summary["n_parameters"] = sum(p.numel() for p in potential.parameters())
    summary["n_trained_parameters"] = 0 if run.regime.startswith("zero-shot") else sum(
        p.numel() for p in potential.parameters() if p.requires_grad)
    write_text(summary_path, json.dumps(summary, indent=2))
    return run_dir


def _curve_sets(store: DatasetStore, run: RunConfig) -> dict[str, tuple[GraphSet, list[dict]]]:
    """A fixed, seeded subsample (``CURVE_FRAMES``) of each test split: the frames a learning
    curve scores. Seeded by the split alone, so every run on a dataset scores the same frames."""
    sets = {}
    for split, (graphs, keys) in load_splits(store, graph_cutoff(run), EVALUATED_SPLITS,
                                             run).items():
        rng = np.random.default_rng(derive_seed(CURVE_SEED, "learning-curve", split))
        index = np.sort(rng.choice(len(graphs), size=min(CURVE_FRAMES, len(graphs)),
                                   replace=False))
        sets[split] = (graphs.subset(index), [keys[i] for i in index])
    return sets


def observe_curve(potential: Potential, curve_sets: dict[str, tuple[GraphSet, list[dict]]],
                  dtype: torch.dtype) -> dict[str, float]:
    """One learning-curve point: force MAE, energy MAE and its relative part on each curve set
    (analysis only: the trainer stores it and reads nothing from it)."""
    point = {}
    for split, (graphs, keys) in curve_sets.items():
        predictions = predict(potential, graphs, keys, dtype=dtype)
        point[f"{split}_force_mae"] = float(np.mean(np.abs(
            predictions.forces - predictions.forces_reference)))
        decomposed = energy_decomposition(predictions.energy, predictions.energy_reference,
                                          predictions.smiles)
        point[f"{split}_energy_mae"] = decomposed["energy_mae"]
        point[f"{split}_relative_energy_mae"] = decomposed["relative_energy_mae"]
    return point


def _start_from(potential: Potential, parent: Path) -> None:
    """Warm start: the parent run's best weights (E0 and scale included)."""
    weights = parent / "best.pt"
    if not weights.exists():
        raise GmdError(f"run {parent} has no best.pt to start from: train it first")
    load_state(potential, load_torch(weights, "weights"), weights)


def _device_name(device: torch.device) -> str:
    """The device as a run records it: ``cuda:0 (NVIDIA H200)`` or ``cpu``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def evaluate_run(run_dir: Path, results: ResultsStore,
                 device: str | torch.device = "cpu") -> dict:
    """Predict id_test and ood_test with the best weights on ``device``; record metrics (and
    the device) in ``results``."""
    device = resolve_device(device)
    run, config = read_run_config(run_dir)
    summary_path = run_dir / "training.json"
    if not summary_path.exists():
        raise GmdError(f"run {run_dir} has not finished training (no training.json)")
    summary = json.loads(summary_path.read_text())
    store = DatasetStore(config["dataset_path"])
    _check_dataset(store, run, f"run {run_dir}")
    dtype = DTYPES[run.training.dtype]
    started = time.perf_counter()
    metrics = {}
    potential = load_potential(run_dir, device)
    with default_dtype(dtype):
        splits = load_splits(store, graph_cutoff(run), EVALUATED_SPLITS, run)
        for split in EVALUATED_SPLITS:
            graphs, keys = splits[split]
            predictions = predict(potential, graphs, keys, dtype=dtype)
            predictions.save(run_dir / f"predictions_{split}.npz")
            metrics[split] = metrics_per_molecule(predictions)
        if hasattr(potential.network, "route"):  # a mixture of experts: routing metrics too
            _record_routing(potential, splits, store, run_dir, metrics, dtype)
    timings = {"train_seconds": summary["train_seconds"],
               "evaluate_seconds": time.perf_counter() - started,
               "train_device": summary.get("device", "cpu"),
               "evaluate_device": _device_name(device)}
    results.record_run(
        run_id=run.run_id, task=run.task, model=run.model, regime=run.regime, seed=run.seed,
        dataset_hash=run.dataset_hash, level_of_theory=store.metadata.get("level_of_theory"),
        run_dir=run_dir.resolve(), config=run.resolved(),
        model_metadata=potential.metadata.model_dump(),
        versions=package_versions(_VERSIONED), timings=timings,
        training=training_record(summary), metrics=metrics)
    write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def training_record(summary: dict) -> dict:
    """The training summary as the results store keeps it: without the per-epoch history and
    learning curve, with the status its history shows (recomputed, so runs trained before the
    status existed get one)."""
    record = {k: v for k, v in summary.items() if k not in ("history", "learning_curve")}
    if summary.get("epochs_run"):
        record["status"] = training_status(summary.get("history") or [])
    return record


def _record_routing(potential: Potential, splits: dict, store: DatasetStore, run_dir: Path,
                    metrics: dict, dtype: torch.dtype) -> None:
    """routing.json, the routing scalars in each split's metrics, and the atoms-by-expert plot."""
    fragments = TaskSpec.model_validate(store.metadata["task"]).fragment_smarts()
    routing = {}
    for split, (graphs, keys) in splits.items():
        routing[split] = routing_metrics(potential.network, graphs, keys, fragments, dtype=dtype,
                                         energy_scale=float(potential.scale))
        metrics[split]["all"].update(flat_routing_metrics(routing[split]))
    write_text(run_dir / "routing.json", json.dumps(
        {"fragments": fragments, **routing}, indent=2))
    shown = {label: (splits[split][0], 0, splits[split][1][0]["smiles"])
             for label, split in (("ID", "id_test"), ("OOD", "ood_test"))}
    plot_atom_experts(potential.network, shown, run_dir / "routing_atoms.png", dtype=dtype)
