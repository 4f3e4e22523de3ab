"""What the reference matrix costs: bench/run_cost.py's projection beside the hours the archived
runs really took, and the hours the missing runs still need.

The issue asks for the measured total, not the projection: the projection (a few epochs timed
on the quick preset and scaled by atoms) is what chose the epoch caps, the archive's timings are
what the matrix cost. Both are read from the archive (``cost_measured.txt`` is run_cost's
printed table, one row per matrix entry in the matrix's order), so the paragraph is rebuilt
with every archived run and never holds a number typed by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from gmdbench.errors import GmdError
from gmdbench.pipeline.matrix import MatrixConfig
from gmdbench.runner.runs import run_config

COST_FILE = "cost_measured.txt"


class MatrixCost(BaseModel):
    """Hours of training + evaluation on the archive's machine."""

    projected_total: float  # the whole matrix, as run_cost projected it
    measured: float  # the archived runs, as they took
    projected_for_measured: float  # the archived runs, as run_cost projected them
    remaining: float  # the missing runs: their configuration's measured mean, or projection x ratio
    ratio: float  # measured / projected over the archived runs (1 before any is archived)
    n_archived: int
    n_missing: int


def projected_hours_per_run(cost_file: Path, matrix: MatrixConfig) -> list[float]:
    """run_cost's hours for one run of each matrix entry (its row's hours over tasks x seeds).

    The rows are matched to the entries by order, name and regime; a table of another matrix
    is refused in one line naming the file."""
    lines = Path(cost_file).read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("model ")), None)
    if start is None:
        raise GmdError(f"{cost_file}: no model table (is it bench/run_cost.py's output?)")
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(line.split())
    if len(rows) != len(matrix.models):
        raise GmdError(f"{cost_file}: {len(rows)} model rows for {len(matrix.models)} entries "
                       f"of matrix {matrix.name}; rerun bench/run_cost.py --matrix {matrix.name}")
    hours = []
    for entry, row in zip(matrix.models, rows, strict=True):
        if row[0] != entry.name or row[-6] != entry.regime:
            raise GmdError(f"{cost_file}: row {' '.join(row[:-5])!r} does not match entry "
                           f"{entry.name} {entry.regime} of matrix {matrix.name}")
        hours.append(float(row[-2]) / (len(matrix.tasks) * len(entry.seeds or matrix.seeds)))
    return hours


def matrix_cells(runs: list[dict], matrix: MatrixConfig
                 ) -> Iterator[tuple[int, int, dict | None]]:
    """Each run the matrix plans, as (entry index, seed, its archived record or None), matched
    by run id on any of the archive's dataset hashes."""
    by_id = {run["run_id"]: run for run in runs}
    hashes = sorted({run["dataset_hash"] for run in runs})
    for task in matrix.tasks:
        for index, seed in matrix.cells():
            entry = matrix.models[index]
            found = [by_id[run.run_id] for run in
                     (run_config(entry, task, seed, dataset_hash) for dataset_hash in hashes)
                     if run.run_id in by_id]
            yield index, seed, found[0] if found else None


def matrix_cost(runs: list[dict], matrix: MatrixConfig, cost_file: Path) -> MatrixCost:
    """The projection, the measured hours of the archived runs of ``matrix`` and an estimate of
    what its missing runs need (``runs``: the archive's run records)."""
    per_run = projected_hours_per_run(cost_file, matrix)
    measured: list[tuple[int, float]] = []  # (entry index, hours)
    missing: list[int] = []
    for index, _, run in matrix_cells(runs, matrix):
        if run is None:
            missing.append(index)
        else:
            timings = run["timings"]
            measured.append((index, (timings["train_seconds"]
                                     + timings.get("evaluate_seconds", 0.0)) / 3600))
    measured_hours = sum(hours for _, hours in measured)
    projected_for_measured = sum(per_run[index] for index, _ in measured)
    ratio = measured_hours / projected_for_measured if projected_for_measured else 1.0
    own: dict[int, list[float]] = {}
    for index, hours in measured:
        own.setdefault(index, []).append(hours)
    remaining = sum(sum(own[index]) / len(own[index]) if index in own
                    else per_run[index] * ratio for index in missing)
    return MatrixCost(projected_total=len(matrix.tasks) * sum(
                          per_run[index] for index, _ in matrix.cells()),
                      measured=measured_hours, projected_for_measured=projected_for_measured,
                      remaining=remaining, ratio=ratio, n_archived=len(measured),
                      n_missing=len(missing))


def cost_paragraph(runs: list[dict], matrix: MatrixConfig, archive: Path) -> str:
    """reference/README.md's cost line, from the archive alone."""
    cost_file = Path(archive) / COST_FILE
    if not cost_file.exists():
        return (f"Cost: no projection archived (`python bench/run_cost.py --matrix "
                f"{matrix.name} > {COST_FILE}`).")
    cost = matrix_cost(runs, matrix, cost_file)
    text = (f"Cost (training + evaluation, this project's 2-core machine): `python "
            f"bench/run_cost.py --matrix {matrix.name}` projected the whole matrix at its epoch "
            f"caps at {cost.projected_total:.1f} h (`{COST_FILE}`); the {cost.n_archived} "
            f"archived runs took {cost.measured:.1f} h against {cost.projected_for_measured:.1f} "
            f"h projected for them ({cost.ratio:.2f}x).")
    if cost.n_missing:
        text += (f" The {cost.n_missing} missing runs need about {cost.remaining:.1f} h more "
                 "(a configuration's own measured hours where one seed is archived, else its "
                 f"projection x {cost.ratio:.2f}): about {cost.measured + cost.remaining:.1f} h "
                 "in all.")
    else:
        text += f" Measured total: {cost.measured:.1f} h."
    return text
