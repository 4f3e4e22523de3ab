"""The reference-table archive: a folder of finished runs' small files, kept in the repository.

A run of the reference matrix takes up to an hour or two on 2 cores and the whole matrix more
than one working session, so each finished run is exported here as soon as it is evaluated and
committed; a later session on another machine skips what the archive already holds, and the
report is rebuilt from the archive alone (no weights needed, no retraining).

Layout (``<archive>/``)::

    runs/<task>-<model>-s<seed>-<run id>/
        record.json             everything the results store holds for the run (config,
                                model metadata, versions, timings, training summary, metrics)
        config.json             the resolved run config (dataset path relative to the run)
        training.json           training summary with its per-epoch history (val force MAE)
        training_log.csv        that history as a table
        metrics.json            metrics per split and per molecule
        predictions_id_test.npz, predictions_ood_test.npz   test predictions: float32,
                                without labels (those are in ../../datasets/labels-*.npz,
                                once per set of frames); runs archived before 2026-12-05
                                held full float64 predictions with labels, rewritten by
                                `gmd reference-table compact` (bit-identical on loading:
                                the models' forces were float32)
        metrics.json is recomputed from the archived predictions, so tables rebuilt from the
        archive are the archived values' own
        routing.json            DeepSet-MoE only
        best.pt                 the weights, only where under 1 MB
        model_build.json        what the network's shape depends on (elements, neighbour
                                statistics): with best.pt, the archived model loads
                                (`runner.runs.load_potential`, an ASE calculator); archived
                                since 2026-12-05
    datasets/<dataset>.distance.json   SOAP distance statistics of the dataset's test frames
    datasets/labels-<hash>.npz         the labels of one set of test frames (float64)
    datasets/definitions.json          each dataset's content hash -> its definition hash
                                (task, preset, reference method and version, seed): a user whose
                                rebuilt dataset differs only in the last bits of its labels
                                still gets the reference rows (``runner/dataset_match.py``)
    partial/<run directory>/    an unfinished run's directory (checkpoint included), saved when a
                                working session ends so the next one resumes it mid-training;
                                removed once the run is archived

A run is written to a hidden folder and renamed into place, so a kill never leaves a half run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from gmdbench.data.store import DatasetStore, dataset_distance_path
from gmdbench.errors import GmdError
from gmdbench.evaluation.evaluate import Predictions, metrics_per_molecule
from gmdbench.files import write_text
from gmdbench.runner.executor import training_record
from gmdbench.runner.results import ResultsStore

# the repository's archive (in a clone or an editable install); elsewhere pass its path
REPOSITORY_ARCHIVE = Path(__file__).resolve().parents[3] / "reference"
WEIGHTS_LIMIT = 1_000_000  # bytes: heavier weights stay out of the repository
COPIED = ("training.json", "metrics.json", "predictions_id_test.npz",
          "predictions_ood_test.npz", "routing.json", "model_build.json")
RECORD_KEYS = ("run_id", "task", "model", "regime", "seed", "dataset_hash", "level_of_theory",
               "config", "model_metadata", "versions", "timings", "training")


DEFINITIONS = Path("datasets") / "definitions.json"  # content hash -> definition hash


def dataset_definitions(archive: Path) -> dict[str, str]:
    """The archive's datasets: exact content hash -> definition hash (``data/content_hash.py``)."""
    path = Path(archive) / DEFINITIONS
    return json.loads(path.read_text()) if path.exists() else {}


def record_dataset_definition(archive: Path, content_hash: str, definition: str) -> None:
    """Add one dataset's definition hash to the archive's list (atomically)."""
    definitions = dataset_definitions(archive)
    if definitions.get(content_hash) == definition:
        return
    definitions[content_hash] = definition
    write_text(Path(archive) / DEFINITIONS, json.dumps(definitions, indent=2, sort_keys=True))


class ArchiveError(GmdError):
    """An archive folder that is missing or holds a run it cannot read."""


def default_archive() -> Path | None:
    """The repository's archive where it holds runs, else None (an installed package)."""
    return REPOSITORY_ARCHIVE if (REPOSITORY_ARCHIVE / "runs").is_dir() else None


def archived_records(archive: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Each finished archived run's folder and record.json (hidden folders are torn writes)."""
    folder = Path(archive) / "runs"
    if not folder.is_dir():
        return []
    return [(path, json.loads((path / "record.json").read_text()))
            for path in sorted(folder.iterdir())
            if not path.name.startswith(".") and (path / "record.json").exists()]


def archived_run_ids(archive: Path) -> set[str]:
    """Run ids the archive already holds (finished runs only)."""
    return {record["run_id"] for _, record in archived_records(archive)}


def export_run(run_dir: Path, results: ResultsStore, archive: Path) -> Path:
    """Copy a finished, evaluated run's small files into ``archive``; return its folder there."""
    run_dir = Path(run_dir)
    record = next((run for run in results.runs() if Path(run["run_dir"]) == run_dir.resolve()),
                  None)
    if record is None:
        raise ArchiveError(f"run {run_dir} is not in results store {results.path}: evaluate it "
                           "first (`gmd evaluate`)")
    runs = Path(archive) / "runs"
    target = runs / run_dir.name
    staging = runs / f".{run_dir.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in COPIED:
        if (run_dir / name).exists() and not name.startswith("predictions_"):
            shutil.copyfile(run_dir / name, staging / name)
    _export_predictions(run_dir, staging, Path(archive) / "datasets")
    weights = run_dir / "best.pt"
    if weights.exists() and weights.stat().st_size < WEIGHTS_LIMIT:
        shutil.copyfile(weights, staging / "best.pt")
    config = json.loads((run_dir / "config.json").read_text())
    dataset = Path(config["dataset_path"])
    config["dataset_path"] = str(Path("..", "..", "datasets", dataset.name))
    (staging / "config.json").write_text(json.dumps(config, indent=2))
    if dataset.exists():  # so a user whose labels differ in the last bits still compares
        definition = DatasetStore(dataset, write=False).definition_hash()
        if definition is not None:
            record_dataset_definition(archive, record["dataset_hash"], definition)
    distance = dataset_distance_path(dataset)
    if distance.exists():
        (Path(archive) / "datasets").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(distance, Path(archive) / "datasets" / distance.name)
    (staging / "record.json").write_text(json.dumps(
        {key: record[key] for key in RECORD_KEYS}, indent=2, sort_keys=True))
    _write_training_log(json.loads((run_dir / "training.json").read_text()),
                        staging / "training_log.csv")
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target


def _export_predictions(run_dir: Path, staging: Path, labels_dir: Path) -> None:
    """Each test split's predictions in compact form (float32, labels once per dataset in
    ``labels_dir``), and metrics.json recomputed from exactly what is archived, so the
    archive's tables come from its own stored values (routing scalars are kept as evaluated)."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for split in ("id_test", "ood_test"):
        source = run_dir / f"predictions_{split}.npz"
        if not source.exists():
            continue
        compact = Predictions.load(source).compacted()
        compact.save_compact(staging / f"predictions_{split}.npz", labels_dir)
        _recompute_metrics(metrics, split, compact)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))


def _recompute_metrics(metrics: dict, split: str, predictions: Predictions) -> dict[str, float]:
    """``metrics[split]`` recomputed, in place, from ``predictions`` (as archived); returns
    the largest relative change of each metric that had a different value before."""
    changed: dict[str, float] = {}
    for molecule, values in metrics_per_molecule(predictions).items():
        known = metrics.setdefault(split, {}).setdefault(molecule, {})
        for name, value in values.items():
            old = known.get(name)
            if isinstance(old, float) and old != value:
                change = abs(value - old) / max(abs(old), 1e-300)
                changed[name] = max(changed.get(name, 0.0), change)
            known[name] = value
    return changed


def compact_archive(archive: Path) -> dict[str, dict[str, float]]:
    """Rewrite every archived run still in the full form (float64 predictions with their
    labels, runs archived before 2026-12-05) in the compact form :func:`export_run` writes now,
    with metrics.json recomputed from the compact values. Returns, per rewritten run, the
    largest relative change of each metric that changed at all (float32 forces move force
    metrics in their 7th digit or beyond). Resumable: metrics.json is written first from the
    compact values held in memory, then each predictions file atomically, so a kill at any
    point leaves a readable run that the next call finishes."""
    changes: dict[str, dict[str, float]] = {}
    labels_dir = Path(archive) / "datasets"
    for run_dir in sorted((Path(archive) / "runs").iterdir()):
        full = [split for split in ("id_test", "ood_test")
                if (run_dir / f"predictions_{split}.npz").exists()
                and not Predictions.is_compact(run_dir / f"predictions_{split}.npz")]
        if run_dir.name.startswith(".") or not full:
            continue
        metrics = json.loads((run_dir / "metrics.json").read_text())
        compact = {split: Predictions.load(run_dir / f"predictions_{split}.npz").compacted()
                   for split in full}
        changed: dict[str, float] = {}
        for split, predictions in compact.items():
            for name, change in _recompute_metrics(metrics, split, predictions).items():
                changed[name] = max(changed.get(name, 0.0), change)
        write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
        for split, predictions in compact.items():
            predictions.save_compact(run_dir / f"predictions_{split}.npz", labels_dir)
        changes[run_dir.name] = changed
    return changes


def save_partial(run_dir: Path, archive: Path) -> Path:
    """Copy an unfinished run's directory (its last epoch checkpoint, config, model build and
    best weights) into ``<archive>/partial``, replacing an older copy."""
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoint.pt").exists():
        raise ArchiveError(f"run {run_dir} has no checkpoint.pt to save")
    folder = Path(archive) / "partial"
    staging = folder / f".{run_dir.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(run_dir, staging, ignore=shutil.ignore_patterns(".*", "predictions_*"))
    target = folder / run_dir.name
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target


def restore_partial(archive: Path, runs_root: Path) -> list[Path]:
    """Put each saved unfinished run back under ``runs_root`` where that machine has none (or
    an earlier epoch), so training resumes from its checkpoint; return the runs restored."""
    folder = Path(archive) / "partial"
    restored = []
    for saved in sorted(folder.iterdir()) if folder.is_dir() else []:
        if saved.name.startswith("."):
            continue
        local = Path(runs_root) / saved.name
        if local.exists() and _epochs(local) >= _epochs(saved):
            continue
        shutil.rmtree(local, ignore_errors=True)
        shutil.copytree(saved, local)
        restored.append(local)
    return restored


def drop_partial(archive: Path, run_dir_name: str) -> None:
    """Forget a saved unfinished run once it is archived; the ``partial`` folder goes with its
    last run (git keeps no empty folder, and a commit naming it would fail)."""
    partial = Path(archive) / "partial"
    shutil.rmtree(partial / run_dir_name, ignore_errors=True)
    if partial.is_dir() and not any(partial.iterdir()):
        partial.rmdir()


def _epochs(run_dir: Path) -> int:
    """Epochs a run directory's checkpoint holds (-1 without one)."""
    path = run_dir / "checkpoint.pt"
    if not path.exists():
        return -1
    return int(torch.load(path, map_location="cpu", weights_only=False)["state"]["epoch"])


def _write_training_log(summary: dict[str, Any], path: Path) -> None:
    history = summary.get("history") or []
    columns = list(history[0]) if history else ["epoch"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(history)


def load_archive(archive: Path, results_path: Path) -> ResultsStore:
    """A results store at ``results_path`` holding every archived run, whose run directories
    are the archive's folders (predictions and config are read from there)."""
    folder = Path(archive) / "runs"
    if not folder.is_dir():
        raise ArchiveError(f"reference archive {archive} has no runs/ folder")
    results = ResultsStore(results_path)
    for run_dir in sorted(folder.iterdir()):
        if run_dir.name.startswith("."):
            continue
        try:
            record = json.loads((run_dir / "record.json").read_text())
            metrics = json.loads((run_dir / "metrics.json").read_text())
            _add_missing_metrics(run_dir, metrics)
            if (run_dir / "training.json").exists():  # the status its history shows
                record["training"]["status"] = training_record(json.loads(
                    (run_dir / "training.json").read_text())).get("status")
            results.record_run(**{key: record[key] for key in RECORD_KEYS},
                               run_dir=run_dir.resolve(), metrics=metrics)
        except (OSError, ValueError, KeyError) as error:
            raise ArchiveError(f"archived run {run_dir} cannot be read: {error}") from error
    return results


def _add_missing_metrics(run_dir: Path, metrics: dict) -> None:
    """Metrics defined after a run was archived (the energy decomposition), computed from its
    archived predictions; the archived values themselves are never replaced."""
    for split in ("id_test", "ood_test"):
        path = run_dir / f"predictions_{split}.npz"
        if split not in metrics or not path.exists() or \
                "offset_mae" in metrics[split].get("all", {}):
            continue
        for molecule, values in metrics_per_molecule(Predictions.load(path)).items():
            known = metrics[split].setdefault(molecule, {})
            known.update({k: v for k, v in values.items() if k not in known})


def resolve_dataset_path(run_dir: Path, dataset_path: str) -> Path:
    """A run config's dataset path; an archived run's is relative to its own folder."""
    path = Path(dataset_path)
    return path if path.is_absolute() else (Path(run_dir) / path).resolve()

