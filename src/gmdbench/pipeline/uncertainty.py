"""``gmd uncertainty RUN...``: does a model know when it is out of distribution?

The seeds of one configuration form a deep ensemble (no extra training: their saved test
predictions are read); the SOAP distance of each test frame from the train split is the second,
training-free signal. Each signal is scored against the ensemble-mean prediction's force error
per frame, on ID and OOD test frames (``evaluation/uncertainty.py`` defines the scores).

No single-model signal is offered: none of the wrapped libraries gives one for these models
without retraining (mace-torch's committee is itself an ensemble; evidential or MC-dropout
heads would change the architectures the table measures).

Writes, in the output folder: ``uncertainty.json`` (per split and signal: Spearman with the
force error, the binned curve with counts; for the ensemble ENCE and 1-/2-sigma coverage),
``frames.csv`` (one row per test frame) and ``uncertainty.png``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np

from gmdbench.data.store import DatasetStore
from gmdbench.distance.analysis import TEST_SPLITS, split_distances
from gmdbench.distance.descriptors import SoapSettings
from gmdbench.distance.manifold import ManifoldSettings, frame_force_mae
from gmdbench.errors import GmdError
from gmdbench.evaluation.evaluate import Predictions
from gmdbench.evaluation.uncertainty import (
    atom_sigma,
    coverage,
    ence,
    ensemble_forces,
    per_frame,
    signal_calibration,
)
from gmdbench.files import atomic_path, write_text
from gmdbench.report.uncertainty import plot_uncertainty
from gmdbench.runner.archive import resolve_dataset_path
from gmdbench.runner.runs import RunConfig, read_run_config

SIGNALS = {"ensemble_force_std": "ensemble force spread (eV/A)",
           "ensemble_energy_std": "ensemble energy spread (eV)",
           "soap_distance": "SOAP distance from train (max over atoms)"}


def ensemble_configuration(run_dirs: list[Path]) -> tuple[list[RunConfig], dict]:
    """The runs, checked to be seeds of one configuration; and the first run's config."""
    if len(run_dirs) < 2:
        raise GmdError("an ensemble needs the runs of two or more seeds of one configuration, "
                       f"got {len(run_dirs)}")
    loaded = [read_run_config(Path(run_dir)) for run_dir in run_dirs]
    runs = [run for run, _ in loaded]
    first = runs[0].resolved()
    for run_dir, run in zip(run_dirs, runs, strict=True):
        differing = sorted(key for key, value in run.resolved().items()
                           if key != "seed" and value != first.get(key))
        if differing:
            raise GmdError(f"run {run_dir} is not a seed of {run_dirs[0]}'s configuration: it "
                           f"differs in {', '.join(differing)}")
    seeds = [run.seed for run in runs]
    if len(set(seeds)) != len(seeds):
        raise GmdError(f"runs share a seed ({seeds}): an ensemble needs distinct seeds")
    return runs, loaded[0][1]


def configuration_label(run: RunConfig) -> str:
    """A folder name for a configuration (seed left out)."""
    resolved = {k: v for k, v in run.resolved().items() if k != "seed"}
    digest = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:10]
    return f"{run.task}-{run.model}-{run.regime}-{digest}"


def ensemble_signals(run_dirs: list[Path], split: str) -> dict[str, np.ndarray]:
    """Per frame of ``split``: the ensemble-mean force MAE and the ensemble spreads; per atom
    component: the error and sigma (for ENCE and coverage)."""
    predictions = []
    for run_dir in run_dirs:
        path = Path(run_dir) / f"predictions_{split}.npz"
        if not path.exists():
            raise GmdError(f"run {run_dir} has no predictions for {split}: run `gmd evaluate "
                           f"{run_dir}` first")
        predictions.append(Predictions.load(path))
    first = predictions[0]
    for run_dir, other in zip(run_dirs[1:], predictions[1:], strict=True):
        if not (np.array_equal(other.trajectory_id, first.trajectory_id)
                and np.array_equal(other.frame, first.frame)
                and np.array_equal(other.forces_reference, first.forces_reference)):
            raise GmdError(f"run {run_dir}: its {split} predictions are not of the same frames "
                           f"as {run_dirs[0]}'s")
    mean, sigma = ensemble_forces([p.forces for p in predictions])
    energies = np.stack([p.energy for p in predictions])
    return {
        "force_mae": frame_force_mae(mean, first.forces_reference, first.n_atoms),
        "ensemble_force_std": per_frame(atom_sigma(sigma), first.n_atoms),
        "ensemble_energy_std": energies.std(axis=0, ddof=1),
        "component_error": mean - first.forces_reference,
        "component_sigma": sigma,
        "trajectory_id": first.trajectory_id, "frame": first.frame, "smiles": first.smiles,
    }


def uncertainty_for_runs(run_dirs: list[Path], out_dir: Path | None = None,
                         bins: int = 8) -> dict:
    """Score the ensemble spread and the SOAP distance of a configuration's seeds; write the
    outputs (see the module docstring) and return the summary."""
    run_dirs = [Path(run_dir) for run_dir in run_dirs]
    runs, config = ensemble_configuration(run_dirs)
    dataset = resolve_dataset_path(run_dirs[0], config["dataset_path"])
    if not dataset.exists():
        raise GmdError(f"dataset {dataset} of run {run_dirs[0]} does not exist: the SOAP "
                       "distance needs its train split")
    store = DatasetStore(dataset)
    soap = SoapSettings()
    distances, _, _ = split_distances(store, "soap", soap, ManifoldSettings(), soap.r_cut,
                                      TEST_SPLITS)
    frames: dict[str, dict[str, np.ndarray]] = {}
    summary: dict = {"task": runs[0].task, "model": runs[0].model, "regime": runs[0].regime,
                     "seeds": [run.seed for run in runs], "dataset_hash": runs[0].dataset_hash,
                     "runs": [run.run_id for run in runs], "signals": SIGNALS, "splits": {}}
    for split in TEST_SPLITS:
        data = ensemble_signals(run_dirs, split)
        keys = [(k["trajectory_id"], int(k["frame"])) for k in distances[split]["keys"]]
        if keys != list(zip(data["trajectory_id"].tolist(), data["frame"].tolist(),
                            strict=True)):
            raise GmdError(f"dataset {dataset}: its {split} frames are not the ones the runs "
                           "predicted; re-run `gmd evaluate`")
        data["soap_distance"] = distances[split]["max"]
        frames[split] = data
        summary["splits"][split] = {
            "force_mae": float(np.mean(np.abs(data["component_error"]))),
            "signals": {name: signal_calibration(data[name], data["force_mae"], bins)
                        for name in SIGNALS},
            "ence": ence(data["component_sigma"], data["component_error"]),
            "coverage": coverage(data["component_sigma"], data["component_error"]),
        }
    ood = summary["splits"]["ood_test"]["signals"]
    ranked = sorted((name for name in SIGNALS if ood[name]["spearman"] is not None),
                    key=lambda name: -ood[name]["spearman"])
    summary["best_ood_signal"] = ranked[0] if ranked else None
    out_dir = Path(out_dir) if out_dir else \
        run_dirs[0].parent.parent / "uncertainty" / configuration_label(runs[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "uncertainty.json", json.dumps(summary, indent=2))
    _write_frames(frames, out_dir / "frames.csv")
    plot_uncertainty(frames, summary, SIGNALS, out_dir / "uncertainty.png")
    return summary


def _write_frames(frames: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "smiles", "trajectory_id", "frame", "force_mae", *SIGNALS])
        for split, data in frames.items():
            for i in range(len(data["force_mae"])):
                writer.writerow([split, data["smiles"][i], data["trajectory_id"][i],
                                 int(data["frame"][i]), f"{data['force_mae'][i]:.6g}",
                                 *(f"{data[name][i]:.6g}" for name in SIGNALS)])
