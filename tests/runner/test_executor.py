"""The run matrix on both executors: same runs, same numbers."""

import pytest

from gmdbench.pipeline.matrix import load_matrix, run_matrix
from gmdbench.runner.results import ResultsStore
from tests_support import tiny_matrix_file


def _matrix(tmp_path):
    return load_matrix(str(tiny_matrix_file("tiny_matrix.yaml", tmp_path)))


def _force_mae(results_path):
    return {(r["model"], r["split"]): r["value"] for r in ResultsStore(results_path).metrics()
            if r["metric"] == "force_mae"}


def test_dask_executor_reproduces_the_local_one(tmp_path):
    matrix = _matrix(tmp_path)
    local = run_matrix(matrix, tmp_path / "local", workers=1, executor="local")
    dask = run_matrix(matrix, tmp_path / "dask", workers=2, executor="dask")
    a, b = _force_mae(local), _force_mae(dask)
    assert set(a) == {(m, s) for m in ("schnet", "painn") for s in ("id_test", "ood_test")}
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-4)
    assert (tmp_path / "dask" / "report" / "table.md").exists()
    # a second run is a cache hit: the same run directories, no new ones
    runs_before = sorted(p.name for p in (tmp_path / "dask" / "runs").iterdir())
    run_matrix(matrix, tmp_path / "dask", workers=2, executor="dask")
    assert sorted(p.name for p in (tmp_path / "dask" / "runs").iterdir()) == runs_before
