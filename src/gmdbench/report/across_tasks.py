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
    for task, task_rows in {first_task: shown, **by_task}.items():
        if task_rows:
            lines.append(_task_sentence(task, task_rows))
    return lines


def _task_sentence(task: str, rows: list[TableRow]) -> str:
    """The best model on OOD forces and on OOD/ID, and the OOD energy failures, of one task."""
    best_ood = min(rows, key=lambda row: row.mean_std("force_mae", "ood_test")[0])
    best_ratio = min(rows, key=lambda row: row.ood_id_ratio()[0])
    failing = [row for row in rows if energy_fails(row)]
    one_model = "" if len(rows) > 1 else " (one model so far)"
    return (f"- **{task}**{one_model}: lowest OOD force MAE {best_ood.model} "
            f"({metric_text(best_ood, 'force_mae', 'ood_test', 4)} eV/A); lowest OOD/ID "
            f"{best_ratio.model} ({ratio_text(best_ratio)}); OOD energy fails (> "
            f"{ENERGY_FAILURE_EV:g} eV and > {ENERGY_FAILURE_FACTOR:g}x ID) for {len(failing)} "
            f"of {len(rows)}.")

