"""CHGNet 0.3.0 and SevenNet-0 through the harness: zero-shot equals each library's own
calculator, fine-tuning lowers the val error, uncovered elements are refused before work."""

import json

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from gmdbench.config import TrainConfig
from gmdbench.data.store import DatasetStore
from gmdbench.errors import UnsupportedElementError
from gmdbench.models.base import isolation_box
from gmdbench.models.calculator import MLIPCalculator
from gmdbench.models.materials_foundation import (
    SEVENNET_ELEMENTS,
    SevenNetAdapter,
    SevenNetConfig,
    build_chgnet,
    build_sevennet,
)
from gmdbench.runner.executor import evaluate_run, train_run
from gmdbench.runner.results import ResultsStore
from gmdbench.runner.runs import RunConfig, load_potential


def _library_calculator(name: str):
    if name == "chgnet":
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(use_device="cpu")
    from sevenn.calculator import SevenNetCalculator

    return SevenNetCalculator("7net-0", device="cpu")


def _structures():
    silicon = bulk("Si", "diamond", a=5.43, cubic=True)
    silicon.rattle(0.05, seed=1)
    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.02, seed=3)
    return [ethanol, silicon]


def _run(dataset, model, regime, **training):
    return RunConfig(task="tiny_alkanes", model=model, regime=regime,
                     training=TrainConfig(**training), seed=0,
                     dataset_hash=DatasetStore(dataset).content_hash())


@pytest.mark.parametrize("model", ["chgnet", "sevennet"])
def test_zero_shot_equals_the_library_calculator(model, tiny_dataset, tmp_path):
    run_dir = train_run(_run(tiny_dataset, model, "zero-shot"), tiny_dataset, tmp_path)
    ours = MLIPCalculator(load_potential(run_dir), dtype=torch.float32)
    theirs = _library_calculator(model)
    for atoms in _structures():
        a, b = atoms.copy(), atoms.copy()
        if not b.pbc.any():  # CHGNet's calculator needs a cell: the box our adapter uses
            b.cell, b.pbc = isolation_box(b.positions, ours.potential.cutoff), True
        a.calc, b.calc = ours, theirs
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-4)
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-4)
    metadata = ours.potential.metadata
    assert metadata.pretrained and "MPtrj" in metadata.level_of_theory


@pytest.mark.parametrize("model", ["chgnet", "sevennet"])
def test_fine_tuning_lowers_the_val_error(model, tiny_dataset, tmp_path):
    results = ResultsStore(tmp_path / "results.db")
    refit = train_run(_run(tiny_dataset, model, "zero-shot-refit"), tiny_dataset, tmp_path)
    tuned = train_run(_run(tiny_dataset, model, "fine-tune", epochs=4, batch_size=4,
                           learning_rate=5e-4, ema_decay=None), tiny_dataset, tmp_path)
    history = json.loads((tuned / "training.json").read_text())["history"]
    assert min(h["val_force_mse"] for h in history) < history[0]["val_force_mse"]
    errors = {name: evaluate_run(run_dir, results)["id_test"]["all"]["force_mae"]
              for name, run_dir in (("refit", refit), ("tuned", tuned))}
    assert errors["tuned"] < errors["refit"]


def test_sevennet_element_table_matches_its_checkpoint():
    adapter = SevenNetAdapter(SevenNetConfig())
    assert tuple(adapter.elements) == SEVENNET_ELEMENTS


@pytest.mark.parametrize(("build", "number", "symbol"),
                         [(build_sevennet, 84, "Po"), (build_chgnet, 95, "Am")])
def test_uncovered_elements_are_refused(build, number, symbol):
    config_class = {"build_sevennet": SevenNetConfig}.get(build.__name__)
    from gmdbench.models.materials_foundation import CHGNetConfig

    config = (config_class or CHGNetConfig)()
    with pytest.raises(UnsupportedElementError, match=f"does not cover {symbol}"):
        build(config, [1, 8, number], {})
