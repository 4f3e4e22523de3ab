"""``gmd report``: tables, a parity plot per (task, model, regime), DeepSet-MoE routing, and the
representations the pipeline saved. Reads the results store and saved files only."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

from gmdbench.errors import GmdError
from gmdbench.evaluation.evaluate import Predictions
from gmdbench.report.ablation import write_ablation
from gmdbench.report.html import write_html
from gmdbench.report.plots import (
    convergence_plot,
    learning_curve_plot,
    parity_plot,
    ratio_chart,
)
from gmdbench.report.routing import write_routing
from gmdbench.report.tables import table_rows, task_order, write_tables
from gmdbench.report.uncertainty import write_uncertainty
from gmdbench.runner.archive import load_archive
from gmdbench.runner.dataset_match import equivalent_datasets
from gmdbench.runner.results import ResultsStore, model_label


def file_label(text: str) -> str:
    """A model label as a file-name part: ``deepset_moe [spatial, sum, rho=identity]`` ->
    ``deepset_moe-spatial-sum-rhoidentity``."""
    return re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9_.]+", "-", text.replace("=", ""))).strip("-")


def write_representations(folder: Path, out_dir: Path) -> list[Path]:
    """representations.md from the pipeline's ``<folder>/<task>/representations.json`` (and its
    CKA and projection plots, copied beside the report)."""
    saved = sorted(Path(folder).glob("*/representations.json"))
    if not saved:
        return []
    lines = ["# Representations\n",
             "Linear CKA between models' node features on the same atoms (first seed of each "
             "model; frames of id_test and of ood_test), and the silhouette of ID vs OOD atoms "
             "in PCA and t-SNE projections of each model's standardised features.\n"]
    written = []
    for path in saved:
        task = path.parent.name
        summary = json.loads(path.read_text())
        for kind in ("cka", "projections"):
            copy = out_dir / f"{kind}_{task}.png"
            shutil.copyfile(path.parent / f"{kind}.png", copy)
            written.append(copy)
        lines += [f"## {task}\n", f"{summary.get('frames_per_split', '?')} frames per split.\n",
                  "| model | silhouette PCA | silhouette t-SNE |", "|---|---|---|"]
        for name in summary["models"]:
            pca = summary["silhouette"].get(f"{name} pca")
            tsne = summary["silhouette"].get(f"{name} tsne")
            lines.append(f"| {name} | {'-' if pca is None else f'{pca:.2f}'} | "
                         f"{'-' if tsne is None else f'{tsne:.2f}'} |")
        lines += ["", f"![CKA {task}](cka_{task}.png)", "",
                  f"![projections {task}](projections_{task}.png)", ""]
    (out_dir / "representations.md").write_text("\n".join(lines))
    return [out_dir / "representations.md", *written]


def write_figures(results: ResultsStore, reference: ResultsStore | None,
                  out_dir: Path, equivalent: dict | None = None) -> list[Path]:
    """figures.md: per task, the OOD/ID force ratio per model (seed error bars) and the val
    force MAE curves of every trained run."""
    rows, _ = table_rows(results, reference, equivalent)
    curves: dict[str, dict[str, list[list[float]]]] = {}
    learning: dict[str, dict[str, list[list[dict]]]] = {}
    for run in results.runs():
        summary = Path(run["run_dir"]) / "training.json"
        saved = json.loads(summary.read_text()) if summary.exists() else {}
        history = saved.get("history", [])
        curve = [record["val_force_mae"] for record in history if "val_force_mae" in record]
        label = f"{model_label(run)} ({run['regime']})"
        differs = run["config"].get("training", {}).get("reference_energies")
        if run["model_metadata"].get("pretrained") is not True and differs == "fit":
            label += " E0 fit"
        curves.setdefault(run["task"], {}).setdefault(label, []).append(curve)
        learning.setdefault(run["task"], {}).setdefault(label, []).append(
            saved.get("learning_curve") or [])
    lines, written = ["# Figures\n"], []
    for task in task_order(rows):
        lines.append(f"## {task}\n")
        ratio = ratio_chart(rows, task, out_dir / f"ratio_{task}.png")
        if ratio:
            written.append(ratio)
            lines += [f"![OOD/ID force ratio, {task}]({ratio.name})", ""]
        curve_plot = convergence_plot(curves.get(task, {}), task,
                                      out_dir / f"convergence_{task}.png")
        if curve_plot:
            written.append(curve_plot)
            lines += [f"![training curves, {task}]({curve_plot.name})", ""]
        learning_plot = learning_curve_plot(
            learning.get(task, {}), f"{task}: learning curves on fixed test frames (analysis "
            "only: never read by training)", out_dir / f"learning_curves_{task}.png")
        if learning_plot:
            written.append(learning_plot)
            lines += [f"![learning curves, {task}]({learning_plot.name})", "",
                      "*ID and OOD force MAE on 200 fixed frames of each test split, and their "
                      "ratio, along training (never read by training): how the ratio moves as "
                      "the ID error falls.*", ""]
    (out_dir / "figures.md").write_text("\n".join(lines))
    return [out_dir / "figures.md", *written]


def build_report(results_path: Path, out_dir: Path, representations: Path | None = None,
                 reference_archive: Path | None = None) -> list[Path]:
    """Every report file of a results store in ``out_dir``. ``representations``: the folder
    where the pipeline saved them (default: ``representations/`` beside the store);
    ``reference_archive``: gmd-bench's reference table, whose rows on the same datasets are
    shown beside the store's own (``runner/archive.py``)."""
    results = ResultsStore(results_path, read_only=True)  # a report never alters its input
    if not results.runs():
        raise GmdError(f"results store {results_path} has no evaluated runs: run `gmd evaluate`")
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        reference = (load_archive(reference_archive, Path(tmp) / "reference.db")
                     if reference_archive is not None else None)
        equivalent = equivalent_datasets(results, reference, reference_archive) \
            if reference is not None and reference_archive is not None else {}
        written = list(write_tables(results, out_dir, reference, equivalent))
        written += write_figures(results, reference, out_dir, equivalent)
    first_seed: dict[tuple[str, str, str], dict] = {}
    for run in results.runs():  # ordered by seed within (task, model, regime)
        first_seed.setdefault((run["task"], file_label(model_label(run)), run["regime"]), run)
    for (task, model, regime), run in sorted(first_seed.items()):
        predictions = {split: Predictions.load(Path(run["run_dir"]) / f"predictions_{split}.npz")
                       for split in ("id_test", "ood_test")}
        title = f"{model} ({regime}), {task}, seed {run['seed']}"
        written.append(parity_plot(predictions, title,
                                   out_dir / f"parity_{task}_{model}_{regime}.png"))
    written += write_routing(results, out_dir)
    written += write_uncertainty(Path(results_path).parent / "uncertainty", out_dir)
    written += write_ablation(results, out_dir)
    folder = representations or Path(results_path).parent / "representations"
    written += write_representations(folder, out_dir)
    written.append(write_html(out_dir))
    return written
