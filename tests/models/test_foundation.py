"""Foundation models through the harness: zero-shot equals the library, fine-tuning helps."""

import json

import numpy as np
import pytest
import torch
from ase.build import molecule

from gmdbench.config import TrainConfig
from gmdbench.data.store import DatasetStore
from gmdbench.models.base import default_dtype
from gmdbench.models.calculator import MLIPCalculator
from gmdbench.models.foundation import load_ani1x_ensemble
from gmdbench.runner.executor import evaluate_run, train_run
from gmdbench.runner.results import ResultsStore
from gmdbench.runner.runs import RunConfig, load_potential
from tests_support import DATA, gmd


def _run(tiny_dataset, regime, **training):
    return RunConfig(task="tiny_alkanes", model="ani1x", regime=regime,
                     training=TrainConfig(**training), seed=0,
                     dataset_hash=DatasetStore(tiny_dataset).content_hash())


def test_zero_shot_ani1x_equals_torchani_calculator(tiny_dataset, tmp_path):
    run_dir = train_run(_run(tiny_dataset, "zero-shot", dtype="float64"), tiny_dataset, tmp_path)
    ours = MLIPCalculator(load_potential(run_dir), dtype=torch.float64)
    with default_dtype(torch.float64):  # torchani's model built in float64, as ours is
        theirs = load_ani1x_ensemble().ase()
    for name in ("CH3CH2OH", "CH3CONH2", "CH3NO2"):
        atoms = molecule(name)
        atoms.rattle(0.02, seed=3)
        a, b = atoms.copy(), atoms.copy()
        a.calc, b.calc = ours, theirs
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-8)
    assert ours.potential.metadata.pretrained
    assert "wB97X" in ours.potential.metadata.level_of_theory


def test_fine_tuning_lowers_the_val_error(tiny_dataset, tmp_path):
    results = ResultsStore(tmp_path / "results.db")
    refit = train_run(_run(tiny_dataset, "zero-shot-refit"), tiny_dataset, tmp_path)
    tuned = train_run(_run(tiny_dataset, "fine-tune", epochs=8, batch_size=4,
                           learning_rate=1e-3, ema_decay=None), tiny_dataset, tmp_path)
    head = train_run(_run(tiny_dataset, "fine-tune-head", epochs=8, batch_size=4,
                          learning_rate=1e-3, ema_decay=None), tiny_dataset, tmp_path)
    summary = json.loads((tuned / "training.json").read_text())
    history = summary["history"]
    assert min(h["val_force_mse"] for h in history) < history[0]["val_force_mse"]
    head_summary = json.loads((head / "training.json").read_text())
    assert head_summary["n_trained_parameters"] < summary["n_trained_parameters"]
    errors = {}
    for name, run_dir in (("refit", refit), ("tuned", tuned)):
        errors[name] = evaluate_run(run_dir, results)["id_test"]["all"]["force_mae"]
    assert errors["tuned"] < errors["refit"]
    regimes = {run["regime"] for run in results.runs()}
    assert regimes == {"zero-shot-refit", "fine-tune"}


def test_pretrained_model_refuses_scratch_and_scratch_model_refuses_zero_shot(tiny_dataset,
                                                                              tmp_path):
    from gmdbench.errors import GmdError

    with pytest.raises(GmdError, match="cannot run regime 'scratch'"):
        train_run(_run(tiny_dataset, "scratch"), tiny_dataset, tmp_path)
    run = RunConfig(task="tiny_alkanes", model="schnet", regime="zero-shot", seed=0,
                    dataset_hash=DatasetStore(tiny_dataset).content_hash())
    with pytest.raises(GmdError, match="cannot run regime 'zero-shot'"):
        train_run(run, tiny_dataset, tmp_path)


def test_ani1x_refuses_a_chlorinated_dataset_before_any_work(tmp_path):
    task = tmp_path / "chloro.yaml"
    task.write_text("name: chloro\nfamilies:\n  - {name: a, role: train, smiles: [C, CCl]}\n"
                    "  - {name: b, role: ood, smiles: [CCCl]}\n")
    data = tmp_path / "chloro.db"
    built = gmd("data", "build", task, "--preset", DATA / "tiny_preset.yaml", "--workers", "1",
                "--out", data)
    assert built.returncode == 0, built.stderr
    result = gmd("train", "--task", "chloro", "--model", "ani1x", "--regime", "zero-shot",
                 "--data", data, "--runs", tmp_path / "runs")
    assert result.returncode == 2
    assert "ANI-1x (H, C, N, O only) does not cover Cl" in result.stderr
    assert not list((tmp_path / "runs").glob("*/best.pt"))


def test_any_ase_calculator_is_evaluated_zero_shot(tiny_dataset, tmp_path):
    """EMT given as module:factory goes through the same evaluation as every model."""
    results = ResultsStore(tmp_path / "results.db")
    dataset_hash = DatasetStore(tiny_dataset).content_hash()
    for regime in ("zero-shot", "zero-shot-refit"):
        run = RunConfig(task="tiny_alkanes", model="ase-calculator", regime=regime,
                        model_options={"factory": "fake_calculators:emt_factory"}, seed=0,
                        dataset_hash=dataset_hash)
        metrics = evaluate_run(train_run(run, tiny_dataset, tmp_path / "runs"), results)
        assert np.isfinite(metrics["ood_test"]["all"]["force_mae"])
    by_regime = {r["regime"]: r for r in results.runs()}
    # EMT energies are on another scale than GFN2-xTB: refitted offsets must close most of it
    energy = {regime: next(m["value"] for m in results.metrics("all")
                           if m["run_id"] == by_regime[regime]["run_id"]
                           and m["metric"] == "energy_mae" and m["split"] == "id_test")
              for regime in by_regime}
    assert energy["zero-shot-refit"] < energy["zero-shot"]
    run = RunConfig(task="tiny_alkanes", model="ase-calculator", regime="fine-tune",
                    seed=0, dataset_hash=dataset_hash)
    from gmdbench.errors import GmdError

    with pytest.raises(GmdError, match="no weights to fine-tune"):
        train_run(run, tiny_dataset, tmp_path / "runs")
