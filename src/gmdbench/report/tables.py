"""The GMD-26 table: a row per configuration, ID and OOD columns, mean +- std over seeds.

A row is one configuration (task, model, variant or size, regime, training config, dataset
hash): only seeds are averaged, so two runs that differ in anything else are two rows, and where
rows of one model differ the table says in what. Every row names the reference energies (E0) its
runs learned on top of, and each task gets an "E0 only" baseline row per E0 choice present (the
energy of the composition alone, no network), so that a reader can tell composition error from
learned error.

Numbers are read back from the results store and saved predictions; nothing is computed from
models here.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from gmdbench.evaluation.evaluate import Predictions
from gmdbench.evaluation.metrics import energy_decomposition, energy_mae, energy_mae_per_atom
from gmdbench.runner.results import ResultsStore, model_label
from gmdbench.runner.runs import RunConfig

COLUMNS = [
    ("force_mae", "Forces MAE (eV/A)", 4),
    ("force_rmse", "Forces RMSE (eV/A)", 4),
    ("force_cosine", "Cosine", 4),
    ("force_magnitude_mae", "F mag. MAE (eV/A)", 4),
    ("energy_mae", "Energy MAE (eV)", 4),
    ("relative_energy_mae", "Rel. energy MAE (eV)", 4),
    ("offset_mae", "Offset MAE (eV)", 4),
    ("energy_mae_per_atom", "Energy MAE (eV/atom)", 4),
    ("efwt", "EFwT", 3),
]
ENERGY_METRICS = {"energy_mae", "relative_energy_mae", "offset_mae", "energy_mae_per_atom",
                  "efwt"}
SPLITS = (("id_test", "ID"), ("ood_test", "OOD"))
E0_ONLY = "E0 only"
STATUS_ORDER = ("converged", "capped", "diverged", "not recorded")
STATUS_DEFINITION = (
    "from its val curves: converged (val force MAE improved by less than 2% over the last "
    "fifth of its epochs), capped (still improving at its epoch cap), diverged (final val "
    "force MAE above 3x its best, or a train-loss spike of 100x).")


@dataclass
class TableRow:
    task: str
    model: str
    regime: str
    conservative: bool
    level_of_theory: str
    model_level_of_theory: str
    e0: str = "-"
    dataset_hash: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    forces_note: str | None = None
    energy_defined: bool = True
    baseline: bool = False
    reference: bool = False  # a row of gmd-bench's reference table, shown beside the user's
    differs: str = ""
    seeds: list[int] = field(default_factory=list)
    # per seed: the training's status (converged, capped, diverged; None where nothing was
    # trained, as zero-shot)
    statuses: list[str | None] = field(default_factory=list)
    values: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))

    def mean_std(self, metric: str, split: str) -> tuple[float, float]:
        values = np.asarray(self.values[(metric, split)], dtype=float)
        if values.size == 0:
            return float("nan"), float("nan")
        return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0

    def ood_id_ratio(self) -> tuple[float, float]:
        """Mean and std over seeds of each seed's OOD/ID force-MAE ratio."""
        ood = np.asarray(self.values[("force_mae", "ood_test")], dtype=float)
        iid = np.asarray(self.values[("force_mae", "id_test")], dtype=float)
        if ood.size == 0 or ood.size != iid.size:
            return float("nan"), float("nan")
        ratios = ood / iid
        return float(ratios.mean()), float(ratios.std(ddof=1)) if ratios.size > 1 else 0.0

    @property
    def convergence(self) -> str:
        """How the trained seeds ended, e.g. ``2 converged, 1 diverged``; ``-``: none trained."""
        trained = Counter(status for status in self.statuses if status is not None)
        return ", ".join(f"{trained[status]} {status}" for status in STATUS_ORDER
                         if trained[status]) or "-"

    @property
    def forces_kind(self) -> str:
        if self.forces_note:
            return self.forces_note
        return "-dE/dx" if self.conservative else "direct"


def e0_label(run: dict[str, Any]) -> str:
    """The reference energies a run's energies sit on, in the words of a table cell."""
    training = run.get("training") or {}
    kind = training.get("reference_energies_kind")
    if kind is None:  # recorded before the summary named it
        if run["model_metadata"].get("pretrained"):
            kind = "model's own" if run["regime"] == "zero-shot" else \
                "fitted offsets on the model"
        else:
            kind = run["config"].get("training", {}).get("reference_energies", "fit")
    if training.get("reference_energies_rank_deficient"):
        kind += " (rank-deficient)"
    return kind


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _configuration(run: dict[str, Any]) -> dict[str, Any]:
    """What defines a row: the resolved run config without its seed."""
    return {k: v for k, v in run["config"].items() if k != "seed"}


def _untrained_key(run: dict[str, Any]) -> str | None:
    """The configuration of a run that trained nothing (zero-shot), else None."""
    if (run.get("training") or {}).get("epochs_run"):
        return None
    return json.dumps([run["task"], model_label(run), run["regime"], _configuration(run)],
                      sort_keys=True)


def collect_rows(results: ResultsStore) -> list[TableRow]:
    runs = {run["run_id"]: run for run in results.runs()}
    rows: dict[tuple[str, str, str, str], TableRow] = {}
    # an untrained run (zero-shot) does not depend on its seed: one value per configuration,
    # its lowest seed's, never a spread of identical copies
    untrained_seed: dict[str, int] = {}
    for run in runs.values():
        if (key := _untrained_key(run)) is not None:
            untrained_seed[key] = min(untrained_seed.get(key, run["seed"]), run["seed"])
    for record in results.metrics("all"):
        run = runs[record["run_id"]]
        key = _untrained_key(run)
        if key is not None and run["seed"] != untrained_seed[key]:
            continue
        metadata = run["model_metadata"]
        configuration = _configuration(run)
        key = (run["task"], model_label(run), run["regime"],
               json.dumps(configuration, sort_keys=True))
        if key not in rows:
            rows[key] = TableRow(
                run["task"], model_label(run), run["regime"], bool(metadata["conservative"]),
                run["level_of_theory"] or "?",
                metadata.get("level_of_theory") or "the data's (trained on it)",
                e0=e0_label(run), dataset_hash=run["dataset_hash"], config=configuration,
                forces_note=metadata.get("forces_note"),
                energy_defined=bool(metadata.get("energy_defined", True)))
        row = rows[key]
        if run["seed"] not in row.seeds:
            row.seeds.append(run["seed"])
            training = run.get("training") or {}
            row.statuses.append(training.get("status", "not recorded")
                                if training.get("epochs_run") else None)
        row.values[(record["metric"], record["split"])].append(record["value"])
    table = [rows[key] for key in sorted(rows)]
    _mark_differences(table)
    return table + e0_only_rows(list(runs.values()))


def _full_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored run config with every default filled in, read as the run reads it (a key added
    after a run was archived takes the value that run had): two rows then differ in a key
    only where their runs really did, never as "None" against a value."""
    try:
        return RunConfig.model_validate({**config, "seed": 0}).model_dump(mode="json")
    except ValidationError:  # a config of another version: compared as stored
        return config


def _mark_differences(rows: list[TableRow]) -> None:
    """Rows of one (task, model, regime) that differ get the config keys they differ in."""
    groups: dict[tuple[str, str, str], list[TableRow]] = defaultdict(list)
    for row in rows:
        groups[(row.task, row.model, row.regime)].append(row)
    for siblings in groups.values():
        if len(siblings) < 2:
            continue
        flat = [_flatten(_full_config(row.config)) for row in siblings]
        keys = sorted(set().union(*flat))
        differing = [k for k in keys if len({json.dumps(f.get(k)) for f in flat}) > 1]
        for row, values in zip(siblings, flat, strict=True):
            row.differs = ", ".join(
                f"{k}={str(values.get(k))[:12] if k == 'dataset_hash' else values.get(k)}"
                for k in differing)


def e0_only_rows(runs: list[dict[str, Any]]) -> list[TableRow]:
    """Per task, dataset and E0 choice of scratch-trained runs: the energy of the composition
    alone (sum of the run's recorded E0 over the atoms of each test frame), no network."""
    chosen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run in runs:
        if run["model_metadata"].get("pretrained") or not (run.get("training") or {}).get(
                "reference_energies"):
            continue
        chosen.setdefault((run["task"], run["dataset_hash"], e0_label(run)), run)
    rows = []
    for (task, dataset_hash, label), run in sorted(chosen.items()):
        table = np.zeros(119)
        for number, energy in run["training"]["reference_energies"].items():
            table[int(number)] = energy
        row = TableRow(task, E0_ONLY, "-", True, run["level_of_theory"] or "?", "-", e0=label,
                       dataset_hash=dataset_hash, baseline=True)
        for split, _ in SPLITS:
            path = Path(run["run_dir"]) / f"predictions_{split}.npz"
            if not path.exists():
                continue
            predictions = Predictions.load(path)
            structure = np.repeat(np.arange(len(predictions.n_atoms)), predictions.n_atoms)
            composition = np.bincount(structure, weights=table[predictions.numbers],
                                      minlength=len(predictions.n_atoms))
            row.values[("energy_mae", split)].append(
                energy_mae(composition, predictions.energy_reference))
            row.values[("energy_mae_per_atom", split)].append(
                energy_mae_per_atom(composition, predictions.energy_reference,
                                    predictions.n_atoms))
            decomposed = energy_decomposition(composition, predictions.energy_reference,
                                              predictions.smiles)
            for metric in ("relative_energy_mae", "offset_mae"):
                row.values[(metric, split)].append(decomposed[metric])
        rows.append(row)
    return rows


def _cell(mean: float, std: float, digits: int, n: int) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def _name(row: TableRow) -> str:
    if row.baseline:
        return f"*{E0_ONLY}*"
    if row.forces_note:
        name = f"{row.model} (partial gradient)‡"
    else:
        name = row.model if row.conservative else f"{row.model} (direct forces)*"
    return f"{name} [reference]" if row.reference else name


def reference_rows(reference: ResultsStore, rows: list[TableRow],
                   equivalent: dict[str, Any] | None = None) -> tuple[list[TableRow], list[str]]:
    """The reference table's rows (no *E0 only* rows: the user's own table has them) for the
    tasks and datasets of ``rows``, marked as reference; and one note per task whose dataset
    differs from the reference's (its rows are then left out: numbers on two datasets never
    share a table). ``equivalent``: user dataset hash -> a match to a reference dataset whose
    exact hash differs (``runner/dataset_match.py``: same definition, labels within
    tolerance); its rows are shown, with a note that says which check matched."""
    equivalent = equivalent or {}
    own = defaultdict(set)
    for row in rows:
        own[row.task].add(row.dataset_hash)
    shown, notes = [], []
    candidates = [row for row in collect_rows(reference) if not row.baseline]
    for task in sorted(own):
        archived = [row for row in candidates if row.task == task]
        if not archived:
            continue
        matched = {equivalent[h].reference_hash: h for h in own[task] if h in equivalent}
        matching = [row for row in archived
                    if row.dataset_hash in own[task] or row.dataset_hash in matched]
        for row in matching:
            row.reference = True
        shown += matching
        for theirs, yours in sorted(matched.items()):
            if any(row.dataset_hash == theirs for row in matching):
                notes.append(f"{task}: reference rows on dataset {theirs[:12]} shown beside "
                             f"yours ({yours[:12]}): {equivalent[yours].describe()}")
        if not matching:
            theirs = ", ".join(sorted({row.dataset_hash[:12] for row in archived}))
            yours = ", ".join(sorted(hash_[:12] for hash_ in own[task]))
            notes.append(f"{task}: the reference table is not shown: its dataset ({theirs}) is "
                         f"not yours ({yours}); build the task at the reference's preset and "
                         "data seed (`gmd run reference`) to compare")
    return shown, notes


def task_order(rows: list[TableRow]) -> list[str]:
    """Tasks with the most configurations first (a reference report leads with its main
    matrix's task, not with the alphabet), then by name."""
    counts = Counter(row.task for row in rows if not row.baseline)
    return sorted({row.task for row in rows}, key=lambda task: (-counts[task], task))


def markdown_table(rows: list[TableRow], notes: list[str] | None = None) -> str:
    lines = []
    for task in task_order(rows):
        task_rows = [row for row in rows if row.task == task]
        theories = sorted({row.level_of_theory for row in task_rows})
        hashes = sorted({row.dataset_hash[:12] for row in task_rows})
        show_differs = any(row.differs for row in task_rows)
        lines.append(f"## {task}\n")
        lines.append(f"Reference labels: {', '.join(theories)}; dataset {', '.join(hashes)}. "
                     "Mean ± std over seeds (a single value where one seed ran); a row is one "
                     "configuration. Energies are total energies, decomposed by molecule: "
                     "Rel. energy MAE = the error left after each molecule's mean error is "
                     "removed (conformations), Offset MAE = the mean over molecules of that "
                     "mean error's size (composition). E0 = the per-element "
                     "reference energies the model learned on top of (isolated: the reference "
                     "method's isolated atoms; fit: least squares on train). *E0 only* rows are "
                     "the energy of the composition alone, no network. Status: each trained "
                     f"seed's, {STATUS_DEFINITION}"
                     + (" [reference]: a row of gmd-bench's reference table "
                        "(reference/ in the repository) on the same dataset."
                        if any(row.reference for row in task_rows) else "") + "\n")
        header = ["Model", "Regime", "E0", "Model's level of theory", "Seeds", "Status"]
        if show_differs:
            header.append("Differs in")
        for _, title, _ in COLUMNS:
            header += [f"{title} ID", f"{title} OOD"]
        header.append("OOD/ID force MAE")
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in task_rows:
            n = len(row.seeds)
            cells = [_name(row), row.regime, row.e0, row.model_level_of_theory,
                     str(n) if not row.baseline else "-", row.convergence]
            if show_differs:
                cells.append(row.differs or "-")
            for metric, _, digits in COLUMNS:
                for split, _ in SPLITS:
                    if metric in ENERGY_METRICS and not row.energy_defined:
                        cells.append("undefined†")
                        continue
                    cells.append(_cell(*row.mean_std(metric, split), digits, n))
            cells.append(_cell(*row.ood_id_ratio(), 2, n))
            lines.append("| " + " | ".join(cells) + " |")
        if any(not row.conservative and not row.forces_note for row in task_rows):
            lines.append("\n* direct-force model: forces are not the gradient of its energy.")
        for note in sorted({row.forces_note for row in task_rows if row.forces_note}):
            lines.append(f"\n‡ forces are {note}.")
        if any(not row.energy_defined for row in task_rows):
            lines.append("\n† no global energy (DeepSet-MoE, aggregation none): trained on "
                         "forces only, its energies are undefined.")
        if any("rank-deficient" in row.e0 for row in task_rows):
            deficient = sorted({row.e0 for row in task_rows
                                if row.baseline and "rank-deficient" in row.e0})
            lines.append("\nrank-deficient: the train compositions do not determine the "
                         "fitted E0 (minimum-norm solution); other compositions inherit the "
                         "error" + (", as the *E0 only* row with E0 "
                                    + " / ".join(f"`{e0}`" for e0 in deficient)
                                    + " shows (the composition alone)" if deficient else "")
                         + ". Offsets on a pretrained model: `anchored` is the well-posed "
                         "choice (isolated atoms of both sides where training leaves them "
                         "free).")
        lines += [f"\nNote: {note}." for note in notes or () if note.startswith(f"{task}:")]
        lines.append("")
    return "\n".join(lines)


CSV_HEADER = ["task", "model", "regime", "e0", "dataset_hash", "differs", "conservative",
              "forces", "level_of_theory", "model_level_of_theory", "n_seeds", "seeds",
              "status", "reference"]


def table_rows(results: ResultsStore, reference: ResultsStore | None = None,
               equivalent: dict[str, Any] | None = None) -> tuple[list[TableRow], list[str]]:
    """The rows of a results store, with ``reference``'s rows on the same (or an equivalent)
    dataset after the user's own in each task (then the baselines); and the notes on tasks
    whose dataset differs from the reference's or was matched to it."""
    rows = collect_rows(results)
    if reference is None:
        return rows, []
    shown, notes = reference_rows(reference, rows, equivalent)
    # a user's row and the reference row of the same model say how they differ (epochs,
    # learning rate, E0, ...), as two rows of the user's own would
    _mark_differences([row for row in rows + shown if not row.baseline])
    return sorted(rows + shown, key=lambda row: (row.task, row.baseline)), notes


def write_tables(results: ResultsStore, out_dir: Path,
                 reference: ResultsStore | None = None,
                 equivalent: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``table.md`` and ``table.csv`` (with ``reference``'s rows on the same datasets
    beside the user's); return their paths."""
    rows, notes = table_rows(results, reference, equivalent)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / "table.md"
    markdown.write_text("# GMD-26: ID vs OOD\n\n" + markdown_table(rows, notes))
    table = out_dir / "table.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        header = list(CSV_HEADER)
        for metric, _, _ in COLUMNS:
            for split, _ in SPLITS:
                header += [f"{metric}_{split}_mean", f"{metric}_{split}_std"]
        header += ["ood_id_force_mae_ratio_mean", "ood_id_force_mae_ratio_std"]
        writer.writerow(header)
        for row in rows:
            cells = [row.task, _name(row).strip("*") if row.baseline else row.model, row.regime,
                     row.e0, row.dataset_hash, row.differs, row.conservative, row.forces_kind,
                     row.level_of_theory, row.model_level_of_theory, len(row.seeds),
                     " ".join(str(s) for s in sorted(row.seeds)), row.convergence,
                     row.reference]
            for metric, _, _ in COLUMNS:
                for split, _ in SPLITS:
                    if metric in ENERGY_METRICS and not row.energy_defined:
                        cells += [float("nan"), float("nan")]
                    else:
                        cells += list(row.mean_std(metric, split))
            cells += list(row.ood_id_ratio())
            writer.writerow(cells)
    return markdown, table
