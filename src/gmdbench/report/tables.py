"""The GMD-26 table: a row per model, ID and OOD columns, mean +- std over seeds.

Numbers are read back from the results store; nothing is computed from models here.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gmdbench.runner.results import ResultsStore

COLUMNS = [
    ("force_mae", "Forces MAE (eV/A)", 4),
    ("force_cosine", "Cosine", 4),
    ("force_magnitude_mae", "F mag. MAE (eV/A)", 4),
    ("energy_mae", "Energy MAE (eV)", 4),
    ("energy_mae_per_atom", "Energy MAE (eV/atom)", 4),
]
SPLITS = (("id_test", "ID"), ("ood_test", "OOD"))


@dataclass
class TableRow:
    task: str
    model: str
    regime: str
    conservative: bool
    level_of_theory: str
    model_level_of_theory: str
    energy_defined: bool = True
    seeds: list[int] = field(default_factory=list)
    values: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))

    def mean_std(self, metric: str, split: str) -> tuple[float, float]:
        values = np.asarray(self.values[(metric, split)], dtype=float)
        if values.size == 0:
            return float("nan"), float("nan")
        return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0

    def ood_id_ratio(self) -> tuple[float, float]:
        """Mean and std over seeds of each seed's OOD/ID force-MAE ratio."""
        ood = np.asarray(self.values[("force_mae", "ood_test")])
        iid = np.asarray(self.values[("force_mae", "id_test")])
        ratios = ood / iid
        return float(ratios.mean()), float(ratios.std(ddof=1)) if ratios.size > 1 else 0.0


def collect_rows(results: ResultsStore) -> list[TableRow]:
    runs = {run["run_id"]: run for run in results.runs()}
    rows: dict[tuple[str, str, str], TableRow] = {}
    for record in results.metrics("all"):
        run = runs[record["run_id"]]
        metadata = run["model_metadata"]
        model = run["model"] + (f" [{metadata['variant']}]" if metadata.get("variant") else "")
        key = (run["task"], model, run["regime"])
        if key not in rows:
            rows[key] = TableRow(run["task"], model, run["regime"],
                                 bool(metadata["conservative"]), run["level_of_theory"] or "?",
                                 metadata.get("level_of_theory") or "the data's (trained on it)",
                                 bool(metadata.get("energy_defined", True)))
        row = rows[key]
        if run["seed"] not in row.seeds:
            row.seeds.append(run["seed"])
        row.values[(record["metric"], record["split"])].append(record["value"])
    return [rows[key] for key in sorted(rows)]


def _cell(mean: float, std: float, digits: int, n: int) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def markdown_table(rows: list[TableRow]) -> str:
    lines = []
    for task in sorted({row.task for row in rows}):
        task_rows = [row for row in rows if row.task == task]
        theories = sorted({row.level_of_theory for row in task_rows})
        lines.append(f"## {task}\n")
        lines.append(f"Reference labels: {', '.join(theories)}. Mean ± std over seeds "
                     "(a single value where one seed ran). Energies are total energies.\n")
        header = ["Model", "Regime", "Model's level of theory", "Seeds"]
        for _, title, _ in COLUMNS:
            header += [f"{title} ID", f"{title} OOD"]
        header.append("OOD/ID force MAE")
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in task_rows:
            name = row.model if row.conservative else f"{row.model} (direct forces)*"
            cells = [name, row.regime, row.model_level_of_theory, str(len(row.seeds))]
            for metric, _, digits in COLUMNS:
                for split, _ in SPLITS:
                    if metric.startswith("energy") and not row.energy_defined:
                        cells.append("undefined†")
                        continue
                    cells.append(_cell(*row.mean_std(metric, split), digits, len(row.seeds)))
            cells.append(_cell(*row.ood_id_ratio(), 2, len(row.seeds)))
            lines.append("| " + " | ".join(cells) + " |")
        if any(not row.conservative for row in task_rows):
            lines.append("\n* direct-force model: forces are not the gradient of its energy.")
        if any(not row.energy_defined for row in task_rows):
            lines.append("\n† no global energy (DeepSet-MoE, aggregation none): trained on "
                         "forces only, its energies are undefined.")
        lines.append("")
    return "\n".join(lines)


def write_tables(results: ResultsStore, out_dir: Path) -> tuple[Path, Path]:
    """Write ``table.md`` and ``table.csv``; return their paths."""
    rows = collect_rows(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / "table.md"
    markdown.write_text("# GMD-26: ID vs OOD\n\n" + markdown_table(rows))
    table = out_dir / "table.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["task", "model", "regime", "conservative", "level_of_theory",
                  "model_level_of_theory", "n_seeds"]
        for metric, _, _ in COLUMNS:
            for split, _ in SPLITS:
                header += [f"{metric}_{split}_mean", f"{metric}_{split}_std"]
        header += ["ood_id_force_mae_ratio_mean", "ood_id_force_mae_ratio_std"]
        writer.writerow(header)
        for row in rows:
            cells = [row.task, row.model, row.regime, row.conservative, row.level_of_theory,
                     row.model_level_of_theory, len(row.seeds)]
            for metric, _, _ in COLUMNS:
                for split, _ in SPLITS:
                    cells += list(row.mean_std(metric, split))
            cells += list(row.ood_id_ratio())
            writer.writerow(cells)
    return markdown, table
