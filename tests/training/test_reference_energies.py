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


def test_anchored_offsets_fit_what_train_determines_and_keep_the_anchor_elsewhere():
    from gmdbench.training.reference_energies import anchored_offsets

    # two elements always in the ratio 1:2 (rank 1): only x0 + 2 x1 is determined
    counts = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    residual = np.array([5.0, 10.0, 15.0])  # x0 + 2 x1 = 5
    anchor = np.array([1.0, 1.0])  # x0 + 2 x1 = 3: off by 2 along the determined direction
    offsets = anchored_offsets(counts, residual, anchor)
    # the determined combination is fitted exactly ...
    assert offsets[0] + 2 * offsets[1] == pytest.approx(5.0)
    # ... and the free direction (2, -1) keeps the anchor's component: by hand, the
    # correction is the minimum-norm solution of (1, 2).c = 2, c = (0.4, 0.8)
    np.testing.assert_allclose(offsets, [1.4, 1.8])
    minimum_norm, *_ = np.linalg.lstsq(counts, residual, rcond=None)
    np.testing.assert_allclose(minimum_norm, [1.0, 2.0])  # the solver's arbitrary split
    free = np.array([2.0, -1.0])
    assert offsets @ free == pytest.approx(anchor @ free)
    assert minimum_norm @ free != pytest.approx(anchor @ free)
    # full rank: the anchor plays no part, the fit is the ordinary one
    full = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    target = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(anchored_offsets(full, target, np.array([50.0, -7.0])),
                               [1.0, 2.0], atol=1e-12)


def test_offset_kind_auto_is_anchored_only_where_isolated_atoms_are_stored():
    from gmdbench.errors import GmdError
    from gmdbench.training.reference_energies import resolve_offset_kind

    isolated = {"H": -10.0, "C": -40.0}
    assert resolve_offset_kind("auto", [1, 6], isolated) == "anchored"
    assert resolve_offset_kind("auto", [1, 6, 8], isolated) == "fit"  # no O stored
    assert resolve_offset_kind("auto", [1, 6], None) == "fit"
    assert resolve_offset_kind("fit", [1, 6], isolated) == "fit"
    for kind in ("anchored", "isolated"):
        with pytest.raises(GmdError, match=f"pretrained_offsets: {kind} needs"):
            resolve_offset_kind(kind, [1, 6, 8], isolated)
    # a kind read from a file is an equal string, not the same object: compared by value
    assert resolve_offset_kind("".join(["au", "to"]), [1, 6], None) == "fit"


def _hand_set(forces=None):
    """CH4, H2O and H2 with E = 4 H + C, 2 H + O, 2 H at H = -1, C = -5, O = -7: three
    compositions, full rank, overdetermined and exact."""
    molecules = [molecule("CH4"), molecule("H2O"), molecule("H2")]
    forces = forces or [np.zeros((len(m), 3)) for m in molecules]
    return GraphSet(molecules, 4.0, [-9.0, -9.0, -2.0], forces)


def test_a_fit_asked_for_by_a_string_built_at_run_time_is_a_fit():
    e0 = reference_energies(_hand_set(), [1, 6, 8], "".join(["f", "it"]), None)
    assert e0 == pytest.approx({1: -1.0, 6: -5.0, 8: -7.0})


def test_stored_run_configs_without_offsets_read_back_as_fit_and_keep_their_ids():
    from gmdbench.runner.runs import RunConfig

    refit = RunConfig(task="t", model="ani1x", regime="zero-shot-refit", dataset_hash="h",
                      training=TrainConfig(pretrained_offsets="fit"))
    stored = refit.resolved()
    assert "pretrained_offsets" not in stored["training"]  # as runs before the option
    again = RunConfig.model_validate(stored)
    assert again.training.pretrained_offsets == "fit" and again.run_id == refit.run_id
    auto = RunConfig(task="t", model="ani1x", regime="zero-shot-refit", dataset_hash="h")
    assert auto.run_id != refit.run_id  # other offsets, another run
    assert RunConfig.model_validate(auto.resolved()).run_id == auto.run_id
    # where no offsets are made, the option is not part of the run
    for regime, model in (("scratch", "schnet"), ("zero-shot", "ani1x")):
        runs = {RunConfig(task="t", model=model, regime=regime, dataset_hash="h",
                          training=TrainConfig(pretrained_offsets=kind)).run_id
                for kind in ("auto", "fit", "isolated")}
        assert len(runs) == 1
        # and such a run reads back as it was made, the option at its default
        made = RunConfig(task="t", model=model, regime=regime, dataset_hash="h")
        assert RunConfig.model_validate(made.stored()) == made


@pytest.mark.parametrize(("offsets", "kind", "deficient"), [
    ("auto", "offsets fitted on the model, anchored to isolated atoms", False),
    ("isolated", "isolated-atom offsets on the model", False),
    ("fit", "fitted offsets on the model", True),
])
def test_the_recorded_offsets_name_their_kind(offsets, kind, deficient):
    from types import SimpleNamespace

    from gmdbench.runner.runs import RunConfig, reference_energy_summary

    acids = _graphs(["CC(=O)O", "CCC(=O)O", "CCCC(=O)O"])
    isolated = {"H": -10.0, "C": -40.0, "O": -80.0}
    run = RunConfig(task="t", model="ani1x", regime="fine-tune", dataset_hash="h",
                    training=TrainConfig(pretrained_offsets=offsets))
    potential = SimpleNamespace(metadata=SimpleNamespace(pretrained=True))
    assert reference_energy_summary(run, potential, acids, isolated) == {
        "reference_energies_kind": kind, "reference_energies_rank_deficient": deficient}


def test_composition_fit_and_force_scale_by_hand(caplog):
    """Element counts per structure, the least-squares E0 on a full-rank set (exact here),
    no warning where the fit is determined, and the force scale as the RMS component (1 for
    a set without forces, never a division by zero)."""
    from gmdbench.training.reference_energies import (
        composition_matrix,
        fit_reference_energies,
        force_scale,
        isolated_energies_cover,
        warn_if_rank_deficient,
    )

    methane = molecule("CH4")
    forces = [np.full((5, 3), 2.0), np.array([[3.0, 0, 0], [0, 0, 0], [0, 0, 0]])]
    graphs = _hand_set([*forces, np.zeros((2, 3))])
    np.testing.assert_array_equal(composition_matrix(graphs, [1, 6, 8]),
                                  [[4, 1, 0], [2, 0, 1], [2, 0, 0]])
    e0 = fit_reference_energies(graphs, [1, 6, 8])
    assert e0 == pytest.approx({1: -1.0, 6: -5.0, 8: -7.0})
    with caplog.at_level(logging.WARNING):
        assert warn_if_rank_deficient(graphs, [1, 6, 8], "E0") is False
    assert "rank" not in caplog.text
    rms = np.sqrt((15 * 4.0 + 9.0) / 30)  # 30 components: 15 of 2, one of 3, 14 zeros
    assert force_scale(graphs) == pytest.approx(rms)
    still = GraphSet([methane], 4.0, [-9.0], [np.zeros((5, 3))])
    assert force_scale(still) == 1.0
    gentle = GraphSet([methane], 4.0, [-9.0], [np.full((5, 3), 0.5)])
    assert force_scale(gentle) == pytest.approx(0.5)  # below 1 eV/A is kept, not clipped
    # one composition for two elements: rank 1, not determined, and said so
    with caplog.at_level(logging.WARNING):
        assert warn_if_rank_deficient(gentle, [1, 6], "E0") is True
    assert "rank 1 for 2 elements" in caplog.text
    assert isolated_energies_cover([1, 6], {"H": -1.0, "C": -5.0})
    assert not isolated_energies_cover([1, 6], {"H": -1.0})
    assert not isolated_energies_cover([1], {}) and not isolated_energies_cover([1], None)
