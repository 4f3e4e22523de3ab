"""Distances of a dataset's test frames from its train split, and their files and plot.

Writes, in ``RUN/distance/`` (or ``--out``): ``distances.csv`` (one row per test frame: split,
molecule, trajectory, frame, max and mean atom distance, force MAE), ``distance.json`` (the
settings, per-split distance statistics, the binned error, Spearman correlation and the
extrapolation distance) and ``error_vs_distance.png``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

import numpy as np

from gmdbench.data.graphs import GraphSet, graphset_from_store
from gmdbench.data.store import DatasetStore
from gmdbench.distance.descriptors import SoapSettings, model_descriptors, soap_descriptors
from gmdbench.distance.manifold import (
    ManifoldSettings,
    TrainingManifold,
    frame_distances,
)

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


def write_distances_csv(frames: dict[str, dict], path: Path) -> None:
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
