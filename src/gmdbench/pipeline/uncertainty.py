"""``gmd uncertainty RUN...``: does a model know when it is out of distribution?

The seeds of one configuration form a deep ensemble (no extra training: their saved test
predictions are read); the SOAP distance of each test frame from the train split is the second,
training-free signal. Each signal is scored against the ensemble-mean prediction's force error
per frame, on ID and OOD test frames (``evaluation/uncertainty.py`` defines the scores).

No single-model signal is offered: none of the wrapped libraries gives one for these models
without retraining (mace-torch's committee is itself an ensemble; evidential or MC-dropout
heads would change the architectures the table measures).

Every score is given three ways, because a pooled Spearman over several molecules mostly says
*which molecule* is hard: pooled; within each molecule (median over molecules, with their
count); and for molecule-only baselines (1/atoms, the molecule's mean spread), constant inside a
molecule, which show how much of the pooled number molecule identity alone reaches.

Calibration (``evaluation/calibration.py``) is read against what a calibrated M-member ensemble
would score, and recalibrated on a held-out half of id_test (val frames have no archived
predictions; half of id_test stands in for them, cut by trajectory or in time), then scored
on the other half and on ood_test.

Writes, in the output folder: ``uncertainty.json`` (per split and signal: pooled and
within-molecule Spearman with the force error, the binned curve with counts, the baselines; the
calibration block), ``frames.csv`` (one row per test frame), ``uncertainty.png`` and
``reliability.png``.
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
from gmdbench.evaluation.calibration import calibration_summary
from gmdbench.evaluation.evaluate import Predictions
from gmdbench.evaluation.uncertainty import (
    atom_force_deviation,
    atom_sigma,
    coverage,
    ence,
    ensemble_forces,
    group_mean,
    per_frame,
    per_frame_max,
    relative_force_deviation,
    signal_calibration,
    spearman,
    within_group_spearman,
)
from gmdbench.files import atomic_path, write_text
from gmdbench.report.uncertainty import (
    plot_reliability,
    plot_reliability_overview,
    plot_uncertainty,
    write_uncertainty,
)
from gmdbench.runner.archive import resolve_dataset_path
from gmdbench.runner.runs import RunConfig, read_run_config

SIGNALS = {"ensemble_force_std": "ensemble force spread, mean over atoms (eV/A)",
           "force_deviation_max": "ensemble force deviation, max over atoms (eV/A)",
           "relative_force_deviation_max": "relative force deviation, max over atoms",
           "ensemble_energy_std": "ensemble energy spread (eV)",
           "energy_std_per_atom": "ensemble energy spread per atom (eV/atom)",
           "soap_distance": "SOAP distance from train (max over atoms)"}
# molecule-only baselines: constant within a molecule, so whatever they score pooled is the
# "which molecule" part of a signal's pooled Spearman; the signals must beat them
BASELINES = {"inverse_atoms": "1 / atoms (smaller molecule, larger error)",
             "molecule_mean_force_std": "the molecule's mean ensemble force spread"}
RELATIVE_LEVEL = 1.0  # eV/A, the level of DeePMD's relative deviation (its users pick one)


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
    """Per frame of ``split``: the ensemble-mean force MAE, every ensemble signal and the
    molecule-only baselines; per atom component: the error and sigma (for calibration)."""
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
    n_atoms = first.n_atoms
    energy_std = energies.std(axis=0, ddof=1)
    force_std = per_frame(atom_sigma(sigma), n_atoms)
    return {
        "force_mae": frame_force_mae(mean, first.forces_reference, n_atoms),
        "worst_atom_error": per_frame_max(
            np.linalg.norm(mean - first.forces_reference, axis=1), n_atoms),
        "ensemble_force_std": force_std,
        "force_deviation_max": per_frame_max(atom_force_deviation(sigma), n_atoms),
        "relative_force_deviation_max": per_frame_max(
            relative_force_deviation(sigma, mean, RELATIVE_LEVEL), n_atoms),
        "ensemble_energy_std": energy_std,
        "energy_std_per_atom": energy_std / n_atoms,
        "inverse_atoms": 1.0 / n_atoms,
        "molecule_mean_force_std": group_mean(force_std, first.smiles),
        "component_error": mean - first.forces_reference,
        "component_sigma": sigma,
        "n_atoms": n_atoms,
        "trajectory_id": first.trajectory_id, "frame": first.frame, "smiles": first.smiles,
    }


def calibration_halves(smiles: np.ndarray, trajectory_id: np.ndarray, frame: np.ndarray
                       ) -> tuple[np.ndarray, str]:
    """True for the frames of the calibration half of a split, and how it was cut. Where every
    molecule has two or more trajectories: each molecule's trajectories in sorted order, every
    second one (no trajectory in both halves). Otherwise: the later half in time of each
    trajectory (contiguous blocks, so neighbouring, correlated MD frames rarely straddle)."""
    calibration = np.zeros(len(trajectory_id), dtype=bool)
    per_molecule = [sorted(set(trajectory_id[smiles == m].tolist())) for m in np.unique(smiles)]
    if all(len(trajectories) >= 2 for trajectories in per_molecule):
        for trajectories in per_molecule:
            for trajectory in trajectories[1::2]:
                calibration |= trajectory_id == trajectory
        return calibration, "odd trajectories of each molecule"
    for trajectory in np.unique(trajectory_id):
        inside = trajectory_id == trajectory
        calibration |= inside & (frame >= np.median(frame[inside]))
    return calibration, "later half in time of each trajectory"


def _component_mask(frames: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Per atom component row, whether its frame is selected."""
    return np.repeat(frames, n_atoms)


def uncertainty_for_runs(run_dirs: list[Path], out_dir: Path | None = None,
                         bins: int = 8, distance: bool = True, per_frame_files: bool = True
                         ) -> dict:
    """Score every ensemble signal (and the SOAP distance, unless ``distance`` is False) of a
    configuration's seeds, pooled and within molecule, beside molecule-only baselines; the
    ensemble's calibration with its M-member yardsticks and recalibrated on held-out ID frames;
    write the outputs (see the module docstring) and return the summary."""
    run_dirs = [Path(run_dir) for run_dir in run_dirs]
    runs, config = ensemble_configuration(run_dirs)
    signals = {name: label for name, label in SIGNALS.items()
               if distance or name != "soap_distance"}
    distances = None
    if distance:
        dataset = resolve_dataset_path(run_dirs[0], config["dataset_path"])
        if not dataset.exists():
            raise GmdError(f"dataset {dataset} of run {run_dirs[0]} does not exist: the SOAP "
                           "distance needs its train split (rebuild it, or pass --no-distance)")
        soap = SoapSettings()
        distances, _, _ = split_distances(DatasetStore(dataset), "soap", soap,
                                          ManifoldSettings(), soap.r_cut, TEST_SPLITS)
    frames: dict[str, dict[str, np.ndarray]] = {}
    summary: dict = {"task": runs[0].task, "model": runs[0].model, "regime": runs[0].regime,
                     "seeds": [run.seed for run in runs], "dataset_hash": runs[0].dataset_hash,
                     "runs": [run.run_id for run in runs],
                     "run_dirs": [run_dir.name for run_dir in run_dirs], "signals": signals,
                     "configuration": _flat({k: v for k, v in runs[0].resolved().items()
                                             if k != "seed"}),
                     "baselines": BASELINES, "relative_level": RELATIVE_LEVEL, "splits": {}}
    for split in TEST_SPLITS:
        data = ensemble_signals(run_dirs, split)
        if distances is not None:
            keys = [(k["trajectory_id"], int(k["frame"])) for k in distances[split]["keys"]]
            if keys != list(zip(data["trajectory_id"].tolist(), data["frame"].tolist(),
                                strict=True)):
                raise GmdError(f"the dataset's {split} frames are not the ones the runs "
                               "predicted; re-run `gmd evaluate`")
            data["soap_distance"] = distances[split]["max"]
        frames[split] = data
        summary["splits"][split] = {
            "force_mae": float(np.mean(np.abs(data["component_error"]))),
            "molecules": int(np.unique(data["smiles"]).size),
            "signals": {name: {**signal_calibration(data[name], data["force_mae"], bins),
                               "within_molecule": within_group_spearman(
                                   data[name], data["force_mae"], data["smiles"])}
                        for name in signals},
            "baselines": {name: {"spearman": spearman(data[name], data["force_mae"])}
                          for name in BASELINES},
            # the same signals against the frame's worst atom (|F error| max over atoms): what
            # a max-over-atoms signal is built to catch
            "worst_atom": {name: {"spearman": spearman(data[name], data["worst_atom_error"]),
                                  "within_molecule": within_group_spearman(
                                      data[name], data["worst_atom_error"], data["smiles"])}
                           for name in signals},
            "ence": ence(data["component_sigma"], data["component_error"]),
            "coverage": coverage(data["component_sigma"], data["component_error"]),
        }
    if not np.any(frames["id_test"]["component_sigma"]):
        raise GmdError(f"runs {', '.join(r.name for r in run_dirs)} predict identically (an "
                       "untrained or zero-shot model): their seeds are no ensemble")
    summary["calibration"] = _calibration(frames, len(run_dirs))
    ood = summary["splits"]["ood_test"]["signals"]
    ranked = sorted((name for name in signals if ood[name]["spearman"] is not None),
                    key=lambda name: -ood[name]["spearman"])
    summary["best_ood_signal"] = ranked[0] if ranked else None
    within = [name for name in signals if ood[name]["within_molecule"]["median"] is not None]
    summary["best_ood_signal_within_molecule"] = max(
        within, key=lambda name: ood[name]["within_molecule"]["median"], default=None)
    out_dir = Path(out_dir) if out_dir else \
        run_dirs[0].parent.parent / "uncertainty" / configuration_label(runs[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "uncertainty.json", json.dumps(summary, indent=2))
    if per_frame_files:  # an archive's runs carry their predictions: these derive from them
        _write_frames(frames, [*signals, *BASELINES], out_dir / "frames.csv")
        plot_uncertainty(frames, summary, signals, out_dir / "uncertainty.png")
        plot_reliability(summary, out_dir / "reliability.png")
    return summary


def _calibration(frames: dict[str, dict[str, np.ndarray]], members: int) -> dict:
    """Fit recalibration on the calibration half of id_test; score the other half and
    ood_test (see evaluation/calibration.py)."""
    data = frames["id_test"]
    halves, cut = calibration_halves(data["smiles"], data["trajectory_id"], data["frame"])
    if not halves.any() or halves.all():
        raise GmdError("id_test is too small to hold out a calibration half (one frame per "
                       "trajectory)")
    fit = _component_mask(halves, data["n_atoms"])
    scored = {"id_test": (data["component_sigma"][~fit], data["component_error"][~fit]),
              "ood_test": (frames["ood_test"]["component_sigma"],
                           frames["ood_test"]["component_error"])}
    result = calibration_summary((data["component_sigma"][fit], data["component_error"][fit]),
                                 scored, members)
    return {"fitted_on": f"id_test, {cut}",
            "scored_on": {"id_test": "id_test, the other half", "ood_test": "ood_test"},
            **result}


def _write_frames(frames: dict[str, dict[str, np.ndarray]], columns: list[str],
                  path: Path) -> None:
    """One row per test frame: its molecule, size, error and every signal (what the within-
    molecule Spearman is recomputed from)."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "smiles", "trajectory_id", "frame", "n_atoms", "force_mae",
                         "worst_atom_error", *columns])
        for split, data in frames.items():
            for i in range(len(data["force_mae"])):
                writer.writerow([split, data["smiles"][i], data["trajectory_id"][i],
                                 int(data["frame"][i]), int(data["n_atoms"][i]),
                                 f"{data['force_mae'][i]:.6g}",
                                 f"{data['worst_atom_error'][i]:.6g}",
                                 *(f"{data[name][i]:.6g}" for name in columns)])


def archive_uncertainty(archive: Path, out_dir: Path, bins: int = 8) -> dict[str, str]:
    """``gmd uncertainty`` for every configuration of an archive with two or more seeds (from
    its committed predictions; no SOAP distance, the archive holds no dataset), into
    ``out_dir/<configuration>`` (the summary only: per-frame tables and figures derive from
    the committed predictions), and ``out_dir/README.md`` with one reliability figure for
    all of them. Returns, per
    configuration, "written" or why it was left out."""
    groups: dict[str, list[Path]] = {}
    for run_dir in sorted(Path(archive, "runs").iterdir()):
        if run_dir.is_dir() and not run_dir.name.startswith("."):
            run, _ = read_run_config(run_dir)
            groups.setdefault(configuration_label(run), []).append(run_dir)
    outcome = {}
    for label, run_dirs in sorted(groups.items()):
        if len(run_dirs) < 2:
            outcome[label] = "one seed"
            continue
        try:
            uncertainty_for_runs(run_dirs, Path(out_dir) / label, bins, distance=False,
                                 per_frame_files=False)
            outcome[label] = "written"
        except GmdError as error:
            outcome[label] = str(error)
    write_uncertainty(Path(out_dir), Path(out_dir), "README.md")
    plot_reliability_overview([json.loads(path.read_text()) for path in
                               sorted(Path(out_dir).glob("*/uncertainty.json"))],
                              Path(out_dir) / "reliability.png")
    return outcome


def _flat(options: dict, prefix: str = "") -> dict[str, str]:
    """A nested configuration as {"training.lr": "0.001", ...} (json values), for the report
    to name what tells two configurations of one model apart."""
    flat: dict[str, str] = {}
    for key, value in options.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value, sort_keys=True)
    return flat
