"""The reference README's cost line: run_cost's projection beside the archived runs' hours."""

from __future__ import annotations

import pytest

from gmdbench.errors import GmdError
from gmdbench.pipeline.matrix import MatrixConfig
from gmdbench.pipeline.reference_cost import (
    cost_paragraph,
    matrix_cost,
    projected_hours_per_run,
)
from gmdbench.runner.runs import run_config

MATRIX = MatrixConfig(name="tiny", tasks=["fragment_duplication"], seeds=[0, 1], models=[
    {"name": "schnet", "size": "small"},
    {"name": "deepset_moe", "options": {"router": "spatial", "aggregation": "sum"}},
])

COST_TABLE = """task                      frames data CPU-h
fragment_duplication        5400       0.14

model                    regime  s/epoch quick  start s epochs  CPU hours (tasks x seeds)  GPU hours
schnet                   scratch            0.5      2.3     60                0.4          -
deepset_moe spatial sum  scratch            0.6      0.1     60                1.0          -

data 0.1 CPU-h (wall ~0.1 h on 2 workers); training + evaluation 1.4 h
"""


def _record(entry_index: int, seed: int, hours: float) -> dict:
    run = run_config(MATRIX.models[entry_index], "fragment_duplication", seed, "hash")
    return {"run_id": run.run_id, "dataset_hash": "hash",
            "timings": {"train_seconds": hours * 3600 - 36.0, "evaluate_seconds": 36.0}}


def test_projection_per_run_is_the_row_over_tasks_times_seeds(tmp_path):
    cost_file = tmp_path / "cost_measured.txt"
    cost_file.write_text(COST_TABLE)
    assert projected_hours_per_run(cost_file, MATRIX) == pytest.approx([0.2, 0.5])


def test_missing_runs_take_their_configuration_s_hours_else_the_projection_times_the_ratio(
        tmp_path):
    cost_file = tmp_path / "cost_measured.txt"
    cost_file.write_text(COST_TABLE)
    cost = matrix_cost([_record(0, 0, 0.5)], MATRIX, cost_file)
    assert cost.measured == pytest.approx(0.5)
    assert cost.projected_for_measured == pytest.approx(0.2)
    assert cost.ratio == pytest.approx(2.5)
    # schnet s1 as its own seed 0 took (0.5 h), deepset_moe s0 and s1 at 0.5 h x 2.5 each
    assert cost.remaining == pytest.approx(0.5 + 2 * 1.25)
    assert (cost.n_archived, cost.n_missing) == (1, 3)
    assert cost.projected_total == pytest.approx(1.4)
    text = cost_paragraph([_record(0, 0, 0.5)], MATRIX, tmp_path)
    assert "0.5 h against 0.2 h projected for them (2.50x)" in text
    assert "about 3.0 h more" in text and "about 3.5 h in all" in text
    complete = [_record(index, seed, 0.3) for index in (0, 1) for seed in (0, 1)]
    assert "Measured total: 1.2 h." in cost_paragraph(complete, MATRIX, tmp_path)


def test_a_cost_table_of_another_matrix_is_refused_naming_the_file(tmp_path):
    cost_file = tmp_path / "cost_measured.txt"
    cost_file.write_text(COST_TABLE.replace("deepset_moe", "painn", 1))
    with pytest.raises(GmdError, match=r"'painn spatial sum scratch' does not match entry deep"):
        projected_hours_per_run(cost_file, MATRIX)
    cost_file.write_text("\n".join(COST_TABLE.splitlines()[:3]))
    with pytest.raises(GmdError, match=r"cost_measured\.txt: no model table"):
        projected_hours_per_run(cost_file, MATRIX)
