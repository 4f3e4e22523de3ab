"""``gmd report``: tables, a parity plot per (task, model, regime), DeepSet-MoE routing."""

from __future__ import annotations

from pathlib import Path

from gmdbench.evaluation.evaluate import Predictions
from gmdbench.report.ablation import write_ablation
from gmdbench.report.html import write_html
from gmdbench.report.plots import parity_plot
from gmdbench.report.routing import write_routing
from gmdbench.report.tables import write_tables
from gmdbench.runner.results import ResultsStore


def write_representations(first_seed: dict[tuple[str, str, str], dict], out_dir: Path,
                          frames_per_split: int = 10) -> list[Path]:
    """Per task with two or more models: linear CKA of their node features on the same
    id_test + ood_test atoms, and PCA/t-SNE silhouettes of ID vs OOD (representations.md)."""
    import shutil

    from gmdbench.analysis.representations import represent_runs

    by_task: dict[str, list[dict]] = {}
    for (task, _, _), run in sorted(first_seed.items()):
        if run["model"] != "ase-calculator":  # an external calculator has no node features
            by_task.setdefault(task, []).append(run)
    lines = ["# Representations\n",
             "Linear CKA between models' node features on the same atoms (first seed of each "
             f"model; {frames_per_split} frames of id_test and of ood_test), and the silhouette "
             "of ID vs OOD atoms in PCA and t-SNE projections of each model's standardised "
             "features.\n"]
    written = []
    for task, runs in by_task.items():
        if len(runs) < 2 or len({run["dataset_hash"] for run in runs}) != 1:
            continue
        folder = out_dir / "representations" / task
        summary = represent_runs([Path(run["run_dir"]) for run in runs], folder,
                                 frames_per_split)
        picture = out_dir / f"cka_{task}.png"
        shutil.copyfile(folder / "cka.png", picture)
        shutil.copyfile(folder / "projections.png", out_dir / f"projections_{task}.png")
        written += [picture, out_dir / f"projections_{task}.png"]
        lines += [f"## {task}\n", "| model | silhouette PCA | silhouette t-SNE |",
                  "|---|---|---|"]
        for name in summary["models"]:
            pca = summary["silhouette"].get(f"{name} pca")
            tsne = summary["silhouette"].get(f"{name} tsne")
            lines.append(f"| {name} | {'-' if pca is None else f'{pca:.2f}'} | "
                         f"{'-' if tsne is None else f'{tsne:.2f}'} |")
        lines += ["", f"![CKA {task}](cka_{task}.png)", "",
                  f"![projections {task}](projections_{task}.png)", ""]
    if not written:
        return []
    (out_dir / "representations.md").write_text("\n".join(lines))
    return [out_dir / "representations.md", *written]


def build_report(results_path: Path, out_dir: Path, representations: bool = True
                 ) -> list[Path]:
    results = ResultsStore(results_path)
    if not results.runs():
        from gmdbench.errors import GmdError

        raise GmdError(f"results store {results_path} has no evaluated runs: run `gmd evaluate`")
    written = list(write_tables(results, out_dir))
    first_seed: dict[tuple[str, str, str], dict] = {}
    for run in results.runs():  # ordered by seed within (task, model, regime)
        variant = run["model_metadata"].get("variant")
        model = run["model"] + (f"-{variant.replace(', ', '-').replace('=', '')}"
                                if variant else "")
        first_seed.setdefault((run["task"], model, run["regime"]), run)
    for (task, model, regime), run in sorted(first_seed.items()):
        predictions = {split: Predictions.load(Path(run["run_dir"]) / f"predictions_{split}.npz")
                       for split in ("id_test", "ood_test")}
        title = f"{model} ({regime}), {task}, seed {run['seed']}"
        written.append(parity_plot(predictions, title,
                                   out_dir / f"parity_{task}_{model}_{regime}.png"))
    written += write_routing(results, out_dir)
    written += write_ablation(results, out_dir)
    if representations:
        written += write_representations(first_seed, out_dir)
    written.append(write_html(out_dir))
    return written
