"""Representations of trained runs: their node features on the same atoms, compared (linear
CKA) and projected (PCA, t-SNE, ID-vs-OOD silhouettes). Computed here, from saved runs; the
report renders the saved files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gmdbench.analysis.representations import ProjectionSettings, compare_representations
from gmdbench.data.graphs import GraphSet, graphset_from_store
from gmdbench.data.store import DatasetStore
from gmdbench.distance.descriptors import model_descriptors
from gmdbench.errors import GmdError
from gmdbench.files import write_text
from gmdbench.models.base import DTYPES, default_dtype
from gmdbench.runner.results import ResultsStore, model_label
from gmdbench.runner.runs import graph_cutoff, load_potential, read_run_config

TASK_FRAMES_PER_SPLIT = 10


def represent_runs(run_dirs: list[Path], out_dir: Path, frames_per_split: int = 20,
                   settings: ProjectionSettings | None = None,
                   device: torch.device | str = "cpu") -> dict:
    """Node features of several runs on the same id_test and ood_test frames (all runs must
    share a dataset): CKA matrix, PCA/t-SNE with ID-vs-OOD silhouettes, plots, a JSON."""
    settings = settings or ProjectionSettings()
    if len(run_dirs) < 1:
        raise GmdError("give at least one run directory")
    configs = [read_run_config(Path(d)) for d in run_dirs]
    hashes = {run.dataset_hash for run, _ in configs}
    if len(hashes) != 1:
        raise GmdError("runs compared on the same atoms must share a dataset; got "
                       f"{len(hashes)} dataset hashes")
    store = DatasetStore(configs[0][1]["dataset_path"])
    features: dict[str, np.ndarray] = {}
    labels: np.ndarray | None = None
    for run_dir, (run, _) in zip(run_dirs, configs, strict=True):
        name = f"{run.model} ({run.regime}, s{run.seed})"
        dtype = DTYPES[run.training.dtype]
        with default_dtype(dtype):
            potential = load_potential(Path(run_dir), device)
            chunks, split_labels = [], []
            for split, label in (("id_test", "ID"), ("ood_test", "OOD")):
                graphs, _ = graphset_from_store(store, split, graph_cutoff(run))
                chosen = np.sort(np.random.default_rng([settings.seed, len(split)]).choice(
                    len(graphs), min(frames_per_split, len(graphs)), replace=False))
                subset = graphs.subset(chosen)
                chunks.append(model_descriptors(potential, subset, dtype=dtype))
                split_labels += [label] * int(subset.n_atoms.sum())
        features[name] = np.concatenate(chunks)
        labels = np.array(split_labels)
    summary = compare_representations(features, labels, out_dir, settings,
                                      "linear CKA of node features (id_test + ood_test atoms)")
    summary["frames_per_split"] = frames_per_split
    write_text(out_dir / "representations.json", json.dumps(summary, indent=2))
    return summary


def write_task_representations(results: ResultsStore, out_dir: Path,
                               frames_per_split: int = TASK_FRAMES_PER_SPLIT,
                               device: torch.device | str = "cpu") -> list[Path]:
    """Per task with two or more models on one dataset: :func:`represent_runs` of the first
    seed of each (model, regime), in ``out_dir/<task>/`` (what ``gmd report`` renders)."""
    first_seed: dict[tuple[str, str, str], dict] = {}
    for run in results.runs():  # ordered by seed within (task, model, regime)
        if run["model"] != "ase-calculator":  # an external calculator has no node features
            first_seed.setdefault((run["task"], model_label(run), run["regime"]), run)
    by_task: dict[str, list[dict]] = {}
    for (task, _, _), run in sorted(first_seed.items()):
        by_task.setdefault(task, []).append(run)
    written = []
    for task, runs in by_task.items():
        if len(runs) < 2 or len({run["dataset_hash"] for run in runs}) != 1:
            continue
        folder = Path(out_dir) / task
        represent_runs([Path(run["run_dir"]) for run in runs], folder, frames_per_split,
                       device=device)
        written.append(folder / "representations.json")
    return written


def path_representations(run_dirs: dict[str, Path], paths: dict, out: Path,
                         device: torch.device | str = "cpu") -> dict:
    """CKA and projections of every model's node features on the atoms of the path images,
    labelled by path class."""
    images = [image for (path_images, _, _) in paths.values() for image in path_images]
    labels = np.concatenate([[spec.path_class or spec.name] * sum(len(i) for i in path_images)
                             for (path_images, _, spec) in paths.values()])
    features = {}
    for label, run_dir in run_dirs.items():
        run, _ = read_run_config(run_dir)
        dtype = DTYPES[run.training.dtype]
        with default_dtype(dtype):
            graphs = GraphSet(images, graph_cutoff(run))
            features[label] = model_descriptors(load_potential(run_dir, device), graphs,
                                                dtype=dtype)
    return compare_representations(features, labels, out, ProjectionSettings(perplexity=10.0),
                                   "linear CKA on the path images' atoms")
