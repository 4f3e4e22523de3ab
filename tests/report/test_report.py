import csv

import numpy as np
import pytest

from gmdbench.evaluation.evaluate import Predictions
from gmdbench.report.build import build_report


def test_table_has_a_row_per_model_read_back_from_the_store(trained_runs, tmp_path):
    from gmdbench.pipeline.representations import write_task_representations

    results, run_dirs = trained_runs
    # the pipeline computes and saves the representations; the report renders them
    write_task_representations(results, tmp_path / "representations")
    written = build_report(results.path, tmp_path, tmp_path / "representations")
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert sorted(row["model"] for row in rows) == ["E0 only", "mace", "schnet"]
    stored = {(r["model"], r["seed"], r["split"], r["metric"]): r["value"]
              for r in results.metrics("all")}
    schnet = next(row for row in rows if row["model"] == "schnet")
    assert schnet["n_seeds"] == "2" and schnet["status"] == "2 capped"
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
    # 3 epochs cannot show a flat val curve: capped, not converged
    assert "| mace | scratch | isolated | the data's (trained on it) | 1 | 1 capped |" in markdown
    assert "| schnet | scratch | isolated | the data's (trained on it) | 2 |" in markdown
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
        import torch

        assert run["versions"]["torch"] == torch.__version__
        assert len(run["dataset_hash"]) == 64
        assert run["timings"]["train_seconds"] > 0
        assert run["training"]["reference_energies"]


def test_runs_that_differ_in_e0_are_two_rows_with_an_e0_only_baseline(trained_runs, tmp_path):
    """One model, one seed, two E0 choices in one store: two rows that say what differs, and an
    "E0 only" row per choice whose energy error is the composition's alone."""
    import shutil

    from gmdbench.report.tables import write_tables
    from gmdbench.runner.executor import evaluate_run, train_run
    from gmdbench.runner.results import ResultsStore
    from gmdbench.runner.runs import read_run_config

    results, run_dirs = trained_runs
    store = ResultsStore(shutil.copyfile(results.path, tmp_path / "results.db"))
    isolated, config = read_run_config(run_dirs[0])
    fit = isolated.model_copy(update={"training": isolated.training.model_copy(
        update={"reference_energies": "fit"})})
    dataset = config["dataset_path"]
    evaluate_run(train_run(fit, dataset, tmp_path / "runs"), store)
    write_tables(store, tmp_path)
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    schnet = [row for row in rows if row["model"] == "schnet"]
    assert sorted(row["e0"] for row in schnet) == ["fit", "isolated"]
    by_e0 = {row["e0"]: row for row in schnet}
    assert by_e0["fit"]["n_seeds"] == "1" and by_e0["isolated"]["n_seeds"] == "2"
    assert by_e0["fit"]["differs"] == "training.reference_energies=fit"
    baselines = {row["e0"]: row for row in rows if row["model"] == "E0 only"}
    assert sorted(baselines) == ["fit", "isolated"]
    # the isolated-atom baseline: sum of the dataset's isolated-atom energies per frame
    ood = Predictions.load(run_dirs[0] / "predictions_ood_test.npz")
    from ase.data import chemical_symbols

    from gmdbench.data.store import DatasetStore

    atom_energy = DatasetStore(dataset).metadata["isolated_atom_energies"]
    per_atom = np.array([atom_energy[chemical_symbols[z]] for z in ood.numbers])
    frame = np.repeat(np.arange(len(ood.n_atoms)), ood.n_atoms)
    composition = np.bincount(frame, weights=per_atom)
    assert float(baselines["isolated"]["energy_mae_ood_test_mean"]) == pytest.approx(
        np.mean(np.abs(composition - ood.energy_reference)))
    assert baselines["isolated"]["force_mae_ood_test_mean"] == "nan"
    for column in ("force_rmse_id_test_mean", "efwt_ood_test_mean"):
        assert np.isfinite(float(by_e0["fit"][column]))
    markdown = (tmp_path / "table.md").read_text()
    assert "| *E0 only* | - | isolated |" in markdown and "Differs in" in markdown
