"""The committed reference table: its report and README are what its archive rebuilds."""

from __future__ import annotations

from pathlib import Path

from gmdbench.pipeline.matrix import load_matrix
from gmdbench.pipeline.reference_table import reference_readme
from gmdbench.report.build import build_report
from gmdbench.runner.archive import REPOSITORY_ARCHIVE, archived_run_ids, load_archive


def test_committed_report_equals_the_one_rebuilt_from_the_archive(tmp_path):
    results = load_archive(REPOSITORY_ARCHIVE, tmp_path / "results.db")
    build_report(results.path, tmp_path / "report", representations=tmp_path / "none")
    for name in ("table.md", "table.csv", "figures.md"):
        committed = REPOSITORY_ARCHIVE / "report" / name
        assert committed.exists(), f"{committed} is missing: run `gmd reference-table report`"
        assert (tmp_path / "report" / name).read_text() == committed.read_text(), \
            f"{committed} is stale: run `gmd reference-table report` and commit"
    readme = reference_readme(results, load_matrix("reference"), REPOSITORY_ARCHIVE,
                              REPOSITORY_ARCHIVE / "report")
    assert readme == (REPOSITORY_ARCHIVE / "README.md").read_text(), \
        "reference/README.md is stale: run `gmd reference-table report` and commit"
    if "](report/comparison.png)" in readme:  # the chart beside the published table
        assert (REPOSITORY_ARCHIVE / "report" / "comparison.png").stat().st_size > 0


def test_every_archived_run_carries_its_small_files():
    assert archived_run_ids(REPOSITORY_ARCHIVE), "the reference archive holds no run"
    for run_dir in sorted(Path(REPOSITORY_ARCHIVE, "runs").iterdir()):
        if run_dir.name.startswith("."):
            continue
        for name in ("record.json", "config.json", "training.json", "training_log.csv",
                     "metrics.json", "predictions_id_test.npz", "predictions_ood_test.npz"):
            assert (run_dir / name).exists(), f"{run_dir / name} is missing"
        weights = run_dir / "best.pt"
        assert not weights.exists() or weights.stat().st_size < 1_000_000
