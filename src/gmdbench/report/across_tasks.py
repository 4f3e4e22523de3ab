"""The reference models across GMD-26's tasks: does what fragment duplication shows (which
model is best on OOD forces, how far OOD error rises over ID, the OOD energy failure) carry
over to the other three tasks?

The published table covers fragment duplication only, so the other tasks have nothing to be
set beside except our own fragment-duplication rows of the same models. Every sentence is
computed from the rows given, so a rebuild after more runs land re-decides it.
"""

from __future__ import annotations

from gmdbench.report.comparison import (
    ENERGY_FAILURE_EV,
    ENERGY_FAILURE_FACTOR,
    energy_fails,
    metric_text,
    ratio_text,
)
from gmdbench.report.tables import TableRow

COLUMNS = ("Task", "Model", "Seeds", "Status", "Forces MAE ID", "Forces MAE OOD",
           "OOD/ID force MAE", "Energy MAE ID", "Energy MAE OOD")


def _key(row: TableRow) -> tuple[str, str, str]:
    """What makes two tasks' rows the same model: its label (options included), regime, E0."""
    return row.model, row.regime, row.e0


def across_tasks(rows: list[TableRow], first_task: str, tasks: list[str]) -> list[str]:
    """Markdown: one table of the models run on ``tasks``, with the same models' rows of
    ``first_task`` above them for scale, then per task which model is best on OOD forces and
    on OOD/ID, and how many OOD energies fail."""
    others = [row for row in rows if row.task in tasks and not row.baseline
              and row.values.get(("force_mae", "ood_test"))]
    if not others:
        return ["No run of these tasks has been archived yet."]
    models = {_key(row) for row in others}
    shown = [row for row in rows if row.task == first_task and _key(row) in models
             and row.values.get(("force_mae", "ood_test"))]
    by_task = {task: sorted((row for row in others if row.task == task), key=lambda r: r.model)
               for task in tasks}
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in [*sorted(shown, key=lambda r: r.model),
                *(row for task in tasks for row in by_task[task])]:
        cells = [row.task, row.model, str(len(row.seeds)), row.convergence,
                 *(metric_text(row, "force_mae", split, 4) for split in ("id_test", "ood_test")),
                 ratio_text(row), metric_text(row, "energy_mae", "id_test", 4),
                 metric_text(row, "energy_mae", "ood_test", 2)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    spreads = _relative_spreads(shown)
    for task, task_rows in {first_task: shown, **by_task}.items():
        if task_rows:
            lines.append(_task_sentence(task, task_rows, spreads, first_task))
    return lines


def _diverged(row: TableRow) -> bool:
    """Every trained seed of the row diverged: its numbers are a failed fit's, not a model's."""
    trained = [status for status in row.statuses if status is not None]
    return bool(trained) and all(status == "diverged" for status in trained)


def _ood(row: TableRow) -> float:
    return row.mean_std("force_mae", "ood_test")[0]


def _ratio(row: TableRow) -> float:
    return row.ood_id_ratio()[0]


def _relative_spreads(rows: list[TableRow]) -> dict[str, dict[str, float]]:
    """Per model label, the seed spread (std / mean) of OOD force MAE and of OOD/ID on the
    rows given (the first task's): the noise a one-seed gap elsewhere is read against. A
    one-seed row's spread is 0, which never makes a gap look like noise."""
    spreads: dict[str, dict[str, float]] = {}
    for row in rows:
        ood, ood_std = row.mean_std("force_mae", "ood_test")
        ratio, ratio_std = row.ood_id_ratio()
        spreads[row.model] = {"ood": ood_std / ood, "ratio": ratio_std / ratio}
    return spreads


def _lowest(rows: list[TableRow], measure: str, spreads: dict[str, dict[str, float]],
            first_task: str) -> str:
    """The row lowest on ``measure`` ("ood" or "ratio") among those not wholly diverged, the
    next one and its gap, whether that gap is inside the seed spread measured on the first
    task, and any diverged row that would have been lower."""
    value, text = (_ood, lambda row: f"{metric_text(row, 'force_mae', 'ood_test', 4)} eV/A") \
        if measure == "ood" else (_ratio, ratio_text)
    usable = sorted((row for row in rows if not _diverged(row)), key=value)
    if not usable:
        return "none (every seed diverged)"
    best = usable[0]
    words = f"{best.model} ({text(best)})"
    if len(usable) > 1:
        second = usable[1]
        gap = value(second) / value(best) - 1
        words += f", next {second.model} (+{gap:.0%})"
        noise = [spreads[row.model][measure] for row in (best, second) if row.model in spreads]
        if noise and gap < max(noise):
            words += (f", inside the seed spread measured on {first_task} (±{max(noise):.0%}):"
                      " not a ranking")
    lower = [row.model for row in rows if _diverged(row) and value(row) < value(best)]
    if lower:
        words += f"; {', '.join(lower)} lower but diverged in every seed"
    return words


def _task_sentence(task: str, rows: list[TableRow], spreads: dict[str, dict[str, float]],
                   first_task: str) -> str:
    """The best model on OOD forces and on OOD/ID (diverged rows set apart, the runner-up's
    gap read against the seed spread), and the OOD energy failures, of one task."""
    failing = [row for row in rows if energy_fails(row)]
    one_model = "" if len(rows) > 1 else " (one model so far)"
    return (f"- **{task}**{one_model}: lowest OOD force MAE "
            f"{_lowest(rows, 'ood', spreads, first_task)}; lowest OOD/ID "
            f"{_lowest(rows, 'ratio', spreads, first_task)}; OOD energy fails (> "
            f"{ENERGY_FAILURE_EV:g} eV and > {ENERGY_FAILURE_FACTOR:g}x ID) for {len(failing)} "
            f"of {len(rows)}.")
