"""gmd train / evaluate / report / run, as a user runs them."""

import json

import pytest

from gmdbench.runner.results import ResultsStore
from tests_support import gmd


def test_train_evaluate_report(tiny_dataset, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("model: {hidden_channels: 16, num_filters: 16}\n"
                      "training: {epochs: 2, batch_size: 4}\n")
    trained = gmd("train", "--task", "tiny_alkanes", "--model", "schnet", "--data", tiny_dataset,
                  "--seed", "4", "--config", config, "--runs", tmp_path / "runs")
    assert trained.returncode == 0, trained.stderr
    # stdout is a pipe, as in a batch job's log: plain progress lines, not a silent bar
    assert "training schnet: epoch 1/2, val loss" in trained.stdout
    assert "training schnet: epoch 2/2, val loss" in trained.stdout
    run_dir = trained.stdout.strip().splitlines()[-1].removeprefix("run: ").strip()
    results = tmp_path / "results.db"
    evaluated = gmd("evaluate", run_dir, "--results", results)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "ood_test" in evaluated.stdout
    (run,) = ResultsStore(results).runs()
    assert run["seed"] == 4 and run["model"] == "schnet"
    reported = gmd("report", results, "--out", tmp_path / "report")
    assert reported.returncode == 0, reported.stderr
    assert (tmp_path / "report" / "table.md").exists()
    assert (tmp_path / "report" / "parity_tiny_alkanes_schnet_scratch.png").exists()
    # a second `gmd train` of the same run is a cache hit: same directory, nothing retrained
    again = gmd("train", "--task", "tiny_alkanes", "--model", "schnet", "--data", tiny_dataset,
                "--seed", "4", "--config", config, "--runs", tmp_path / "runs")
    assert again.stdout.strip().splitlines()[-1].endswith(run_dir.split("/")[-1])


def test_evaluate_and_report_refuse_what_is_not_there(tmp_path):
    missing = gmd("evaluate", tmp_path / "no-run")
    assert missing.returncode == 2 and "is not a run directory" in missing.stderr
    ResultsStore(tmp_path / "empty.db")
    empty = gmd("report", tmp_path / "empty.db")
    assert empty.returncode == 2 and "has no evaluated runs" in empty.stderr


def test_train_refuses_a_dataset_of_another_task_and_bad_config(tiny_dataset, tmp_path):
    wrong = gmd("train", "--task", "chain_extension", "--model", "schnet", "--data",
                tiny_dataset)
    assert wrong.returncode == 2 and "built for task 'tiny_alkanes'" in wrong.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {epoks: 3}\n")
    result = gmd("train", "--task", "tiny_alkanes", "--model", "schnet", "--data",
                 tiny_dataset, "--config", bad)
    assert result.returncode == 2 and "training.epoks" in result.stderr


@pytest.mark.slow
def test_run_quick_end_to_end(tmp_path):
    """The README's main job: dataset, SchNet and MACE, report (425 s in the full suite on
    this 2-core machine, 2026-12-07, nothing else running: the suite's slowest test, as the
    suite runs it single-threaded, OMP_NUM_THREADS=1 from conftest.py; 170 s alone with both
    cores)."""
    result = gmd("run", "quick", "--out", tmp_path / "quick")
    assert result.returncode == 0, result.stderr
    markdown = (tmp_path / "quick" / "report" / "table.md").read_text()
    assert "| mace | scratch | isolated |" in markdown
    assert "| schnet | scratch | isolated |" in markdown
    assert "| *E0 only* | - | isolated |" in markdown
    # the repository's reference table is on the standard dataset: named, not mixed in
    assert "the reference table is not shown: its dataset" in markdown
    import csv

    rows = {row["model"]: row for row in csv.DictReader(
        (tmp_path / "quick" / "report" / "table.csv").open())}
    # with the reference method's isolated atoms as E0, the di-acids' energies are no longer
    # off by the ~40 eV a rank-deficient fit on mono-acids gave them
    assert float(rows["mace"]["energy_mae_ood_test_mean"]) < 10.0
    assert {"force_rmse_ood_test_mean", "efwt_ood_test_mean"} <= set(rows["mace"])
    # the frames are thermalised: ASE's own temperature of the stored momenta (FixCom)
    import ase.db
    import numpy as np
    from ase.constraints import FixCom

    (data,) = (tmp_path / "quick" / "datasets").glob("*.db")
    temperatures = []
    for row in ase.db.connect(data).select():
        atoms = row.toatoms()
        atoms.set_constraint(FixCom())
        temperatures.append(atoms.get_temperature())
    assert abs(np.mean(temperatures) - 300.0) < 30.0, np.mean(temperatures)


def test_the_paper_training_config_loads_by_name_and_unknown_names_are_refused(tiny_dataset):
    from gmdbench.runner.runs import load_train_file

    paper = load_train_file("paper").training
    assert (paper.loss, paper.energy_weight, paper.force_weight, paper.batch_size,
            paper.epochs) == ("mae_l2", 4.0, 100.0, 8, 50)
    unknown = gmd("train", "--task", "tiny_alkanes", "--model", "schnet", "--data",
                  tiny_dataset, "--config", "papr")
    assert unknown.returncode == 2 and "unknown train config 'papr'" in unknown.stderr
    assert "paper" in unknown.stderr


def test_models_list_shows_every_model_with_its_forces():
    listed = gmd("models", "list")
    assert listed.returncode == 0, listed.stderr
    for name in ("schnet", "painn", "dimenetpp", "gemnet_oc", "equiformer_v2", "mace"):
        assert name in listed.stdout
    assert "fairchem-core" in listed.stdout and "mace-torch" in listed.stdout
    line = next(line for line in listed.stdout.splitlines() if "equiformer_v2" in line)
    assert "direct" in line


def test_uncertainty_command_and_its_table_in_the_report(trained_runs, tmp_path):
    import shutil

    results, run_dirs = trained_runs
    out = tmp_path / "uncertainty" / "schnet"
    scored = gmd("uncertainty", run_dirs[0], run_dirs[1], "--out", out)
    assert scored.returncode == 0, scored.stderr
    assert "best signal for OOD failures" in scored.stdout
    assert {"uncertainty.json", "frames.csv", "uncertainty.png"} <= {
        p.name for p in out.iterdir()}
    shutil.copyfile(results.path, tmp_path / "results.db")
    reported = gmd("report", tmp_path / "results.db", "--out", tmp_path / "report")
    assert reported.returncode == 0, reported.stderr
    table = (tmp_path / "report" / "uncertainty.md").read_text()
    assert "| schnet | scratch | 0, 1 | ensemble_force_std |" in table  # ranking skill
    assert "| schnet | scratch | 0, 1 | ood_test |" in table  # calibration, seeds named too
    mixed = gmd("uncertainty", run_dirs[0], run_dirs[2])  # schnet and mace
    assert mixed.returncode == 2 and "differs in" in mixed.stderr
    assert len(mixed.stderr.strip().splitlines()) == 1


def test_explore_command_hands_labelled_frames_to_the_next_round(trained_runs, tiny_dataset,
                                                                 tmp_path):
    """`gmd explore` as a user types it: two seeds drive MD of butane (outside the task); with
    a trust window nothing leaves, every sampled frame is kept, labelled and added to data.db."""
    _, run_dirs = trained_runs
    out = tmp_path / "explore"
    result = gmd("explore", run_dirs[0], run_dirs[1], "--smiles", "CCCC", "--low", "0",
                 "--high", "1000", "--steps", "20", "--sample-every", "10", "--base",
                 tiny_dataset, "--out", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "exploration.json").read_text())
    assert summary["molecules"][0]["stopped_by"] == "steps"
    assert summary["candidates"] == 3  # steps 0, 10, 20
    assert "3 labelled candidate(s)" in result.stdout
    from gmdbench.data.store import DatasetStore

    grown = DatasetStore(out / "data.db", write=False)
    assert sum(r.get("source") == "exploration" for r in grown.rows(split="train")) == 3
