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


def build_report(results_path: Path, out_dir: Path) -> list[Path]:
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
    written.append(write_html(out_dir))
    return written
