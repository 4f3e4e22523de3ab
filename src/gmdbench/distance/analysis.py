"""``gmd distance RUN``: distances of a run's test frames from its training set, against errors.

Writes, in ``RUN/distance/`` (or ``--out``): ``distances.csv`` (one row per test frame: split,
molecule, trajectory, frame, max and mean atom distance, force MAE), ``distance.json`` (the
settings, per-split distance statistics, the binned error, Spearman correlation and the
extrapolation distance) and ``error_vs_distance.png``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Literal

import numpy as np

from gmdbench.data.graphs import GraphSet, graphset_from_store
from gmdbench.data.store import DatasetStore
from gmdbench.distance.descriptors import SoapSettings, model_descriptors, soap_descriptors
from gmdbench.distance.manifold import (
    ManifoldSettings,
    TrainingManifold,
    error_vs_distance,
    frame_distances,
    frame_force_mae,
)
from gmdbench.errors import GmdError

TEST_SPLITS = ("id_test", "ood_test")
Descriptor = Literal["soap", "model"]


def split_descriptors(graphs: GraphSet, descriptor: Descriptor, soap: SoapSettings,
                      potential=None, dtype=None) -> np.ndarray:
    if descriptor == "soap":
        return soap_descriptors(graphs.structures(), soap)
    return model_descriptors(potential, graphs, dtype=dtype)


def split_distances(store: DatasetStore, descriptor: Descriptor, soap: SoapSettings,
                    settings: ManifoldSettings, cutoff: float, splits: tuple[str, ...],
                    potential=None, dtype=None
                    ) -> tuple[dict[str, dict], SoapSettings, TrainingManifold]:
    """Per-frame (max, mean) distances of ``splits`` from the train split, with each frame's
    keys; the SOAP settings used (species filled in from the dataset) and the manifold."""
    train, train_keys = graphset_from_store(store, "train", cutoff)
    tests = {split: graphset_from_store(store, split, cutoff) for split in splits}
    soap = soap.model_copy(update={"species": species_of(train, *(g for g, _ in tests.values()))})
    trajectories = np.repeat([key["trajectory_id"] for key in train_keys], train.n_atoms)
    manifold = TrainingManifold(split_descriptors(train, descriptor, soap, potential, dtype),
                                train.numbers, settings, trajectories)
    result = {}
    for split, (graphs, keys) in tests.items():
        atoms = manifold.atom_distances(
            split_descriptors(graphs, descriptor, soap, potential, dtype), graphs.numbers)
        maxima, means = frame_distances(atoms, graphs.n_atoms)
        result[split] = {"max": maxima, "mean": means, "keys": keys}
    return result, soap, manifold


def dataset_distances(store: DatasetStore, soap: SoapSettings | None = None,
                      settings: ManifoldSettings | None = None,
                      splits: tuple[str, ...] = TEST_SPLITS
                      ) -> tuple[dict[str, dict], SoapSettings]:
    """SOAP distances of a dataset's test frames from its train split (model-independent)."""
    soap = soap or SoapSettings()
    frames, soap, _ = split_distances(store, "soap", soap, settings or ManifoldSettings(),
                                      soap.r_cut, splits)
    return frames, soap


def species_of(*graphsets: GraphSet) -> list[int]:
    """Every element of the given sets: SOAP's species must cover train and test alike."""
    return sorted({int(z) for graphs in graphsets for z in np.unique(graphs.numbers)})


def summarise(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    return {"median": float(np.median(finite)), "mean": float(finite.mean()),
            "p90": float(np.quantile(finite, 0.9)), "max": float(finite.max()),
            "unseen_element_frames": int((~np.isfinite(values)).sum())}


def distance_for_run(run_dir: Path, descriptor: Descriptor = "soap",
                     settings: ManifoldSettings | None = None, soap: SoapSettings | None = None,
                     bins: int = 12, out_dir: Path | None = None) -> dict:
    """Distances of a run's test frames, joined with its saved predictions' errors."""
    import torch

    from gmdbench.evaluation.evaluate import Predictions
    from gmdbench.runner.executor import (
        DTYPES,
        default_dtype,
        graph_cutoff,
        load_potential,
        read_run_config,
    )

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
        potential, dtype = load_potential(run_dir), DTYPES[run.training.dtype]
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
    _write_csv(frames, out_dir / "distances.csv")
    (out_dir / "distance.json").write_text(json.dumps(summary, indent=2))
    plot_error_vs_distance(frames, binned, f"{run.model} on {run.task} (seed {run.seed}), "
                           f"{descriptor} distance", out_dir / "error_vs_distance.png")
    return summary


def _write_csv(frames: dict[str, dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "smiles", "trajectory_id", "frame", "distance_max",
                         "distance_mean", "force_mae"])
        for split, data in frames.items():
            for key, d_max, d_mean, error in zip(data["keys"], data["max"], data["mean"],
                                                 data["force_mae"], strict=True):
                writer.writerow([split, key["smiles"], key["trajectory_id"], key["frame"],
                                 f"{d_max:.6g}", f"{d_mean:.6g}", f"{error:.6g}"])


def plot_error_vs_distance(frames: dict[str, dict], binned, title: str, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    for split, colour in (("id_test", "tab:blue"), ("ood_test", "tab:red")):
        top.scatter(frames[split]["max"], frames[split]["force_mae"], s=8, alpha=0.35,
                    color=colour, label=f"{split} frames")
    edges = np.asarray(binned.bin_edges)
    centres = 0.5 * (edges[:-1] + edges[1:])
    mae = np.array([np.nan if v is None else v for v in binned.bin_force_mae])
    top.plot(centres, mae, "k-o", ms=4, label="binned force MAE")
    top.axhline(2 * binned.id_test_force_mae, color="0.4", ls="--", lw=1,
                label="2 x id_test force MAE")
    if binned.extrapolation_distance is not None:
        top.axvline(binned.extrapolation_distance, color="tab:orange", lw=1.2,
                    label=f"extrapolation distance {binned.extrapolation_distance:.2f}")
    rho = "n/a" if binned.spearman_rho is None else f"{binned.spearman_rho:.2f}"
    top.set_title(f"{title}\nSpearman rho = {rho}", fontsize=10)
    top.set_ylabel("force MAE per frame (eV/A)")
    top.legend(fontsize=8)
    bottom.bar(edges[:-1], binned.bin_counts, width=np.diff(edges), align="edge",
               color="0.7", edgecolor="k")
    bottom.set_ylabel("frames")
    bottom.set_xlabel("distance from training manifold (max over atoms; 1 = spacing between "
                      "training trajectories)")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def dataset_distance_path(data: Path) -> Path:
    return Path(data).with_suffix(".distance.json")


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
    path.write_text(json.dumps({
        "dataset_hash": dataset_hash, "soap": soap.model_dump(), "manifold": settings.model_dump(),
        "splits": {split: {"max": summarise(d["max"]), "mean": summarise(d["mean"])}
                   for split, d in distances.items()}}, indent=2))
    return path
