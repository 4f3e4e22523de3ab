import csv

import numpy as np
import pytest

from gmdbench.evaluation.evaluate import Predictions
from gmdbench.report.build import build_report


def test_table_has_a_row_per_model_read_back_from_the_store(trained_runs, tmp_path):
    results, run_dirs = trained_runs
    written = build_report(results.path, tmp_path)
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert sorted(row["model"] for row in rows) == ["mace", "schnet"]
    stored = {(r["model"], r["seed"], r["split"], r["metric"]): r["value"]
              for r in results.metrics("all")}
    schnet = next(row for row in rows if row["model"] == "schnet")
    assert schnet["n_seeds"] == "2"
    for split in ("id_test", "ood_test"):
        values = [stored[("schnet", seed, split, "force_mae")] for seed in (0, 1)]
        assert float(schnet[f"force_mae_{split}_mean"]) == pytest.approx(np.mean(values))
        assert float(schnet[f"force_mae_{split}_std"]) == pytest.approx(np.std(values, ddof=1))
    # and the stored numbers are those of the saved predictions
    mace_dir = run_dirs[2]
    ood = Predictions.load(mace_dir / "predictions_ood_test.npz")
    mace = next(row for row in rows if row["model"] == "mace")
    assert float(mace["energy_mae_ood_test_mean"]) == pytest.approx(
        np.mean(np.abs(ood.energy - ood.energy_reference)))
    markdown = (tmp_path / "table.md").read_text()
    assert "| mace | scratch | the data's (trained on it) | 1 |" in markdown
    assert "| schnet | scratch | the data's (trained on it) | 2 |" in markdown
    assert any(path.name.startswith("parity_tiny_alkanes_mace") for path in written)
    assert all(path.exists() and path.stat().st_size > 0 for path in written)
    # schnet and mace share the dataset: a CKA heatmap and ID/OOD silhouettes per model
    assert (tmp_path / "cka_tiny_alkanes.png").exists()
    representations = (tmp_path / "representations.md").read_text()
    assert "schnet (scratch, s0)" in representations and "mace (scratch, s0)" in representations
    assert "cka_tiny_alkanes.png" in (tmp_path / "index.html").read_text()


def test_metrics_are_stored_per_molecule(trained_runs):
    results, _ = trained_runs
    molecules = {(r["split"], r["molecule"]) for r in results.metrics("*")}
    assert ("ood_test", "CCC") in molecules
    assert {("id_test", "C"), ("id_test", "CC"), ("id_test", "all")} <= molecules


def test_runs_record_config_versions_hash_and_timings(trained_runs):
    results, _ = trained_runs
    for run in results.runs():
        assert run["config"]["training"]["epochs"] == 3
        assert run["versions"]["torch"].startswith("2.13")
        assert len(run["dataset_hash"]) == 64
        assert run["timings"]["train_seconds"] > 0
        assert run["training"]["reference_energies"]
