"""gmd-bench's own reference table: run the `reference` matrix into the repository's archive,
one run at a time, and rebuild its report from the archive alone.

The matrix costs about 12 hours on 2 cores, more than one working session: each run is
exported to the archive (``runner/archive.py``) the moment it is evaluated, and a later session
(on another machine, from a fresh clone) skips every run the archive holds. The archived runs'
dataset hash must equal the hash of the dataset this machine builds, or the run is refused:
numbers of two datasets never share a table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from gmdbench.errors import GmdError
from gmdbench.pipeline.matrix import MatrixConfig, matrix_device, plan_matrix
from gmdbench.pipeline.runs import train_and_evaluate
from gmdbench.report.build import build_report
from gmdbench.runner.archive import archived_run_ids, export_run, load_archive
from gmdbench.runner.results import ResultsStore


def run_reference_table(matrix: MatrixConfig, out_dir: Path, archive: Path,
                        on_event: Callable[[str], None] | None = None,
                        device: str | None = None, limit: int | None = None) -> list[Path]:
    """Train, evaluate and archive every run of ``matrix`` the archive lacks, seed by seed;
    ``limit``: stop after that many runs. Returns the archived folders written now."""
    say = on_event or (lambda message: None)
    device = matrix_device(matrix, device, None, None)
    out_dir = Path(out_dir).resolve()
    results = ResultsStore(out_dir / "results.db")
    planned = plan_matrix(matrix, out_dir, on_event=say)
    _check_archive_hashes(archive, {run.dataset_hash for run, _ in planned})
    done = archived_run_ids(archive)
    remaining = [(run, data) for run, data in planned if run.run_id not in done]
    say(f"{len(planned) - len(remaining)} of {len(planned)} runs already archived in {archive}")
    written = []
    for run, data in remaining[:limit]:
        run_dirs = train_and_evaluate([(run, data)], out_dir / "runs", results, on_event=say,
                                      device=device)
        written.append(export_run(run_dirs[run.run_id], results, archive))
        say(f"archived {written[-1]}")
    return written


def _check_archive_hashes(archive: Path, dataset_hashes: set[str]) -> None:
    """Refuse to add runs on a dataset whose content differs from the archived runs' one."""
    if not (Path(archive) / "runs").is_dir():
        return
    with tempfile.TemporaryDirectory() as tmp:
        archived = {run["dataset_hash"] for run in load_archive(archive, Path(tmp) / "r.db")
                    .runs()}
    if archived and not archived & dataset_hashes:
        raise GmdError(
            f"reference archive {archive} holds runs on dataset(s) "
            f"{', '.join(sorted(h[:16] for h in archived))} but this machine built "
            f"{', '.join(sorted(h[:16] for h in dataset_hashes))}: the data generation is not "
            "reproducing here; compare `gmd data info` of both before adding runs")


def rebuild_reference_report(archive: Path, out_dir: Path | None = None) -> list[Path]:
    """The reference report (``<archive>/report`` by default) from the archived files alone."""
    out_dir = Path(out_dir) if out_dir else Path(archive) / "report"
    with tempfile.TemporaryDirectory() as tmp:
        results = load_archive(archive, Path(tmp) / "results.db")
        return build_report(results.path, out_dir, representations=Path(tmp) / "none")
