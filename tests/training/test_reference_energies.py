"""E0: isolated atoms by default, a rank-deficient fit flagged, float64 through every dtype."""

import logging

import numpy as np
import pytest
import torch
from ase.build import molecule

from gmdbench.chem.molecules import embed_conformers
from gmdbench.data.graphs import GraphSet
from gmdbench.models.base import Potential
from gmdbench.models.registry import build_model, model_config
from gmdbench.training.reference_energies import fit_rank, reference_energies
from gmdbench.training.trainer import ExponentialMovingAverage, TrainConfig


def _graphs(smiles: list[str]) -> GraphSet:
    structures = [embed_conformers(s, 1, seed=0)[0] for s in smiles]
    energies = [-10.0 * len(a) for a in structures]
    return GraphSet(structures, 4.0, energies, [np.zeros((len(a), 3)) for a in structures])


def test_default_is_isolated_atoms():
    assert TrainConfig().reference_energies == "isolated"


def test_mono_acids_make_a_fit_rank_deficient_and_it_is_logged(caplog):
    acids = _graphs(["CC(=O)O", "CCC(=O)O", "CCCC(=O)O"])  # 2 O each, H = 2C
    elements = acids.elements
    assert fit_rank(acids, elements) == 2 < len(elements)
    with caplog.at_level(logging.WARNING):
        reference_energies(acids, elements, "fit", None)
    assert "rank 2 for 3 elements" in caplog.text
    mixed = _graphs(["CC(=O)O", "CCC(=O)O", "OC(=O)CC(=O)O"])  # a di-acid breaks the tie
    assert fit_rank(mixed, mixed.elements) == 3


def test_isolated_energies_are_the_stored_ones_and_missing_ones_are_refused():
    acids = _graphs(["CC(=O)O"])
    isolated = {"H": -0.4, "C": -1.7, "O": -3.9}
    assert reference_energies(acids, acids.elements, "isolated", isolated) == {
        1: -0.4, 6: -1.7, 8: -3.9}
    with pytest.raises(Exception, match="none for O"):
        reference_energies(acids, acids.elements, "isolated", {"H": -0.4, "C": -1.7})


def test_reference_energies_stay_float64_in_a_float32_potential():
    atoms = molecule("CH3CH2OH")
    graphs = GraphSet([atoms], 4.0)
    network = build_model(model_config("schnet", {"cutoff": 4.0, "hidden_channels": 8,
                                                  "num_filters": 8}), graphs.elements, {})
    e0 = {1: -13.123456789, 6: -1029.987654321, 8: -2041.55555555}
    potential = Potential(network, e0, scale=0.123456789).to(torch.float32)
    assert potential.atomic_energies.dtype == torch.float64
    assert potential.scale.dtype == torch.float64
    batch = graphs.gather([0], dtype=torch.float32)
    exact = sum(e0[int(z)] for z in atoms.numbers)
    assert float(potential.reference_energy(batch)[0]) == exact
    # and through a state dict saved from float32 and loaded into a float32 model
    other = Potential(build_model(model_config("schnet", {"cutoff": 4.0, "hidden_channels": 8,
                                                          "num_filters": 8}),
                                  graphs.elements, {}), {}).to(torch.float32)
    other.load_state_dict(potential.state_dict())
    assert float(other.reference_energy(batch)[0]) == exact


def test_ema_warms_up_instead_of_keeping_the_initial_weights():
    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    ema = ExponentialMovingAverage(layer, decay=0.99)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    ema.update()  # decay min(0.99, 1/10) = 0.1: the shadow moves 90% of the way
    assert float(ema.shadow[0]) == pytest.approx(0.9)
    for _ in range(20):
        ema.update()
    assert float(ema.shadow[0]) > 0.999  # a fixed 0.99 would still hold 0.99^21 = 81% of 0
    state = ema.state_dict()
    fresh = ExponentialMovingAverage(layer, decay=0.99)
    fresh.load_state_dict(state)
    assert fresh.updates == 21 and fresh.current_decay() == ema.current_decay()


@pytest.mark.parametrize(("model", "regime", "e0", "kind", "deficient"), [
    ("schnet", "scratch", "isolated", "isolated", False),
    ("schnet", "scratch", "fit", "fit", True),
    ("ani1x", "zero-shot", "isolated", "model's own", False),
    # offsets refitted on a pretrained model are the same least-squares fit as E0 "fit"
    ("ani1x", "zero-shot-refit", "isolated", "fitted offsets on the model", True),
    ("ani1x", "fine-tune", "isolated", "fitted offsets on the model", True),
])
def test_the_recorded_e0_flags_every_fit_on_tied_compositions(model, regime, e0, kind,
                                                               deficient):
    from types import SimpleNamespace

    from gmdbench.runner.runs import RunConfig, reference_energy_summary

    acids = _graphs(["CC(=O)O", "CCC(=O)O", "CCCC(=O)O"])
    run = RunConfig(task="t", model=model, regime=regime, dataset_hash="h",
                    training=TrainConfig(reference_energies=e0))
    potential = SimpleNamespace(metadata=SimpleNamespace(pretrained=model == "ani1x"))
    assert reference_energy_summary(run, potential, acids) == {
        "reference_energies_kind": kind, "reference_energies_rank_deficient": deficient}
    mixed = _graphs(["CC(=O)O", "CCC(=O)O", "OC(=O)CC(=O)O"])
    assert not reference_energy_summary(run, potential, mixed)[
        "reference_energies_rank_deficient"]
