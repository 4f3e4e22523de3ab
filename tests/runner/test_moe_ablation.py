"""`gmd run` on a tiny ablation: variants apart in the tables, routing and distance reported."""

import json

import pytest

from gmdbench.pipeline.matrix import load_matrix
from tests_support import gmd, tiny_matrix_file


def test_builtin_moe_ablation_covers_every_router_and_aggregation():
    matrix = load_matrix("moe-ablation")
    variants = {(m.options["router"], m.options["aggregation"]) for m in matrix.models
                if m.name == "deepset_moe"}
    assert variants == {(r, a) for r in ("identity", "spatial", "learned")
                        for a in ("sum", "mean", "attention", "none")}
    assert {m.name for m in matrix.models} >= {"schnet", "mace"}
    assert len(matrix.tasks) == 4 and matrix.distance_statistics


def test_tiny_ablation_end_to_end(tmp_path):
    matrix = tiny_matrix_file("tiny_moe_matrix.yaml", tmp_path)
    result = gmd("run", matrix, "--out", tmp_path / "out", "--workers", "1")
    assert result.returncode == 0, result.stderr
    report = tmp_path / "out" / "report"
    ablation = (report / "ablation.md").read_text()
    assert "deepset_moe [identity, sum, rho=identity]" in ablation
    assert "deepset_moe [learned, none, rho=identity]" in ablation
    assert "| schnet |" in ablation and "ood_test median" in ablation
    table = (report / "table.md").read_text()
    assert "undefined†" in table  # aggregation none has no energy
    routing = (report / "routing.md").read_text()
    assert routing.count("| tiny_alkanes |") == 4  # two variants x two splits
    assert list(report.glob("routing_*.png"))
    page = (report / "index.html").read_text()  # the HTML report holds every table
    assert page.count("<table>") >= 3 and "routing_" in page
    distance = json.loads(next((tmp_path / "out" / "datasets").glob("*.distance.json"))
                          .read_text())
    assert distance["splits"]["ood_test"]["max"]["median"] > 0
    # the numbers in ablation.md are the results store's, variant by variant
    import csv

    import numpy as np

    from gmdbench.runner.results import ResultsStore, model_label

    store = ResultsStore(tmp_path / "out" / "results.db")
    runs = {run["run_id"]: run for run in store.runs()}
    stored: dict[str, dict[str, list[float]]] = {}
    for record in store.metrics("all"):
        if record["metric"] == "force_mae":
            label = model_label(runs[record["run_id"]])
            stored.setdefault(label, {}).setdefault(record["split"], []).append(record["value"])
    rows = {row["model"]: row for row in csv.DictReader((report / "table.csv").open())}
    for label, splits in stored.items():
        ratio = np.mean(splits["ood_test"]) / np.mean(splits["id_test"])  # one seed here
        assert float(rows[label]["ood_id_force_mae_ratio_mean"]) == pytest.approx(ratio)
        line = next(line for line in ablation.splitlines() if line.startswith(f"| {label} |"))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert float(cells[2].split(" ± ")[0]) == pytest.approx(np.mean(splits["id_test"]),
                                                               abs=5e-5)
        assert float(cells[4].split(" ± ")[0]) == pytest.approx(ratio, abs=5e-3)
