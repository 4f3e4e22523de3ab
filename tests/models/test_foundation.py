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


def test_pretrained_offsets_by_default_are_anchored_to_both_sides_isolated_atoms(
        tiny_dataset, tmp_path):
    """zero-shot-refit with the default offsets: on train compositions that determine them
    (methane and ethane) they are the plain fit; on tied ones (methane alone: H = 4 C) the free
    direction keeps the reference's isolated atoms minus ANI-1x's own, where the plain fit
    (``fit``) takes the solver's minimum-norm split."""
    from ase.data import chemical_symbols

    from gmdbench.runner.runs import (
        graph_cutoff,
        load_splits,
        offsets_on_top,
        read_run_config,
        single_atom_energies,
    )
    from gmdbench.training.reference_energies import composition_matrix

    store = DatasetStore(tiny_dataset)
    isolated = store.metadata["isolated_atom_energies"]
    anchored_dir = train_run(_run(tiny_dataset, "zero-shot-refit", dtype="float64"),
                             tiny_dataset, tmp_path)
    fit_dir = train_run(_run(tiny_dataset, "zero-shot-refit", dtype="float64",
                             pretrained_offsets="fit"), tiny_dataset, tmp_path)
    assert anchored_dir != fit_dir
    summary = json.loads((anchored_dir / "training.json").read_text())
    assert summary["reference_energies_kind"] == ("offsets fitted on the model, anchored to "
                                                  "isolated atoms")
    assert not summary["reference_energies_rank_deficient"]
    anchored, fitted = load_potential(anchored_dir), load_potential(fit_dir)
    np.testing.assert_allclose(anchored.atomic_energies.detach().numpy(),
                               fitted.atomic_energies.detach().numpy(), atol=1e-6)

    run, _ = read_run_config(anchored_dir)
    cutoff = graph_cutoff(run)
    with default_dtype(torch.float64):
        graphs, keys = load_splits(store, cutoff, ("train",), run)["train"]
        methane = graphs.subset([i for i, key in enumerate(keys) if key["smiles"] == "C"])
        elements = methane.elements
        own = single_atom_energies(anchored, elements, cutoff)
        tied = {kind: offsets_on_top(anchored, methane, elements, kind, isolated, cutoff)
                .numpy()[elements] for kind in ("anchored", "fit", "isolated")}
    anchor = np.array([isolated[chemical_symbols[z]] for z in elements]) - own
    np.testing.assert_allclose(tied["isolated"], anchor)
    counts = composition_matrix(methane, elements)
    np.testing.assert_allclose(counts @ tied["anchored"], counts @ tied["fit"], atol=1e-6)
    free = np.array([1.0, -4.0]) if elements == [1, 6] else None  # (H, C): 4 H per C
    assert free is not None and np.allclose(counts @ free, 0)
    assert free @ tied["anchored"] == pytest.approx(free @ anchor, abs=1e-6)
    assert abs(free @ tied["fit"] - free @ anchor) > 1e-2
