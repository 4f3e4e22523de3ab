"""``gmd distance RUN`` and dataset distance statistics: the distance pipeline on saved runs.

Writes, in ``RUN/distance/`` (or ``--out``): ``distances.csv`` (one row per test frame: split,
molecule, trajectory, frame, max and mean atom distance, force MAE), ``distance.json`` (the
settings, per-split distance statistics, the binned error, Spearman correlation and the
extrapolation distance) and ``error_vs_distance.png``; and beside a dataset,
``<dataset>.distance.json`` (SOAP statistics of its test splits, for reports).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gmdbench.data.store import DatasetStore, dataset_distance_path
from gmdbench.distance.analysis import (
    TEST_SPLITS,
    Descriptor,
    dataset_distances,
    plot_error_vs_distance,
    split_distances,
    summarise,
    write_distances_csv,
)
from gmdbench.distance.descriptors import SoapSettings
from gmdbench.distance.manifold import ManifoldSettings, error_vs_distance, frame_force_mae
from gmdbench.errors import GmdError
from gmdbench.evaluation.evaluate import Predictions
from gmdbench.files import write_text
from gmdbench.models.base import DTYPES, default_dtype
from gmdbench.runner.runs import graph_cutoff, load_potential, read_run_config


def distance_for_run(run_dir: Path, descriptor: Descriptor = "soap",
                     settings: ManifoldSettings | None = None, soap: SoapSettings | None = None,
                     bins: int = 12, out_dir: Path | None = None,
                     device: torch.device | str = "cpu") -> dict:
    """Distances of a run's test frames, joined with its saved predictions' errors."""
    run_dir = Path(run_dir)
    run, config = read_run_config(run_dir)
    settings = settings or ManifoldSettings()
    store = DatasetStore(config["dataset_path"])
    for split in TEST_SPLITS:
        if not (run_dir / f"predictions_{split}.npz").exists():
            raise GmdError(f"run {run_dir} has no predictions for {split}: run `gmd evaluate "
                           f"{run_dir}` first")
    potential, dtype = None, torch.float32
    if descriptor == "model":
        potential, dtype = load_potential(run_dir, device), DTYPES[run.training.dtype]
    cutoff = graph_cutoff(run) if descriptor == "model" else (soap or SoapSettings()).r_cut

    with default_dtype(dtype):
        frames, soap, manifold = split_distances(store, descriptor, soap or SoapSettings(),
                                                 settings, cutoff, TEST_SPLITS, potential, dtype)
    for split, data in frames.items():
        predictions = Predictions.load(run_dir / f"predictions_{split}.npz")
        same = [(k["trajectory_id"], int(k["frame"])) for k in data["keys"]] == list(
            zip(predictions.trajectory_id.tolist(), predictions.frame.tolist(), strict=True))
        if not same:
            raise GmdError(f"run {run_dir}: predictions_{split}.npz does not match the "
                           "dataset's frames; re-run `gmd evaluate`")
        data["force_mae"] = frame_force_mae(predictions.forces, predictions.forces_reference,
                                            predictions.n_atoms)
    id_predictions = Predictions.load(run_dir / "predictions_id_test.npz")
    id_mae = float(np.mean(np.abs(id_predictions.forces - id_predictions.forces_reference)))
    pooled_distance = np.concatenate([frames[s]["max"] for s in TEST_SPLITS])
    pooled_error = np.concatenate([frames[s]["force_mae"] for s in TEST_SPLITS])
    binned = error_vs_distance(pooled_distance, pooled_error, id_mae, bins=bins)
    summary = {
        "run_id": run.run_id, "task": run.task, "model": run.model, "seed": run.seed,
        "dataset_hash": run.dataset_hash, "descriptor": descriptor,
        "soap": soap.model_dump() if descriptor == "soap" else None,
        "manifold": settings.model_dump(), "median_training_spacing": manifold.median,
        "splits": {split: {"max": summarise(frames[split]["max"]),
                           "mean": summarise(frames[split]["mean"])} for split in TEST_SPLITS},
        "error_vs_distance": binned.model_dump(),
    }
    out_dir = Path(out_dir) if out_dir else run_dir / "distance"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_distances_csv(frames, out_dir / "distances.csv")
    write_text(out_dir / "distance.json", json.dumps(summary, indent=2))
    plot_error_vs_distance(frames, binned, f"{run.model} on {run.task} (seed {run.seed}), "
                           f"{descriptor} distance", out_dir / "error_vs_distance.png")
    return summary


def write_dataset_distance(data: Path) -> Path:
    """SOAP distance statistics of a dataset's test splits, cached beside it by content hash."""
    store = DatasetStore(data)
    path = dataset_distance_path(data)
    dataset_hash = store.content_hash()
    settings = ManifoldSettings()
    if path.exists():
        cached = json.loads(path.read_text())
        if cached.get("dataset_hash") == dataset_hash \
                and cached.get("manifold") == settings.model_dump():
            return path
    distances, soap = dataset_distances(store, SoapSettings(), settings)
    write_text(path, json.dumps({
        "dataset_hash": dataset_hash, "soap": soap.model_dump(), "manifold": settings.model_dump(),
        "splits": {split: {"max": summarise(d["max"]), "mean": summarise(d["mean"])}
                   for split, d in distances.items()}}, indent=2))
    return path
