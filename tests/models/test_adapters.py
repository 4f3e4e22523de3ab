"""Every adapter through the same checks: it fits a few structures, its forces are conservative."""

import numpy as np
import pytest
import torch
from ase.build import molecule

from gmdbench.config import TrainConfig
from gmdbench.data.graphs import GraphSet, graphset_from_store
from gmdbench.data.store import DatasetStore
from gmdbench.models.base import Potential, default_dtype
from gmdbench.models.registry import build_model, model_config
from gmdbench.training.reference_energies import fit_reference_energies, force_scale
from gmdbench.training.trainer import train

ADAPTERS = [
    ("schnet", {}),
    ("painn", {}),
    ("painn", {"direct_forces": True}),
    ("mace", {"hidden_irreps": "16x0e + 16x1o", "radial_mlp": [16, 16]}),
    ("nequip", {"num_features": 8, "num_layers": 2}),
    ("dimenetpp", {}),
    ("gemnet_oc", {}),
    ("equiformer_v2", {}),
    # DeepSet-MoE: every router and aggregation and both rho (the variants are configs)
    ("deepset_moe", {"router": "identity", "aggregation": "sum", "rho": "identity"}),
    ("deepset_moe", {"router": "spatial", "aggregation": "mean", "rho": "mlp"}),
    ("deepset_moe", {"router": "learned", "aggregation": "attention", "rho": "mlp"}),
    ("deepset_moe", {"router": "identity", "aggregation": "none"}),
]
# fairchem's DimeNet++ detaches positions in its angle computation (-dE/dx through distances
# only) and EquiformerV2 uses a direct force head: both are marked non-conservative and left out
# of the finite-difference check.
NOT_GRADIENTS = {"dimenetpp", "equiformer_v2"}
# fairchem 1.10's GemNet-OC computes its output layer in float32 whatever the input dtype, so
# its finite-difference check runs in float32 with a larger step and tolerance.
PRECISION = {"gemnet_oc": (torch.float32, 1e-2, 5e-3)}
# After training on 4 structures for the stated epochs, the force RMSE on them must be below
# this fraction of the RMS reference force (a model that learned nothing sits at about 1).
OVERFIT_THRESHOLD = 0.25


def _potential(name, options, graphs, seed=0):
    config = model_config(name, options)
    torch.manual_seed(seed)
    network = build_model(config, graphs.elements, {"avg_num_neighbors": 6.0})
    return Potential(network, fit_reference_energies(graphs, graphs.elements),
                     scale=force_scale(graphs))


def _cutoff(name, options):
    config = model_config(name, options)
    return getattr(config, "cutoff", None) or config.r_max


@pytest.mark.parametrize(("name", "options"), ADAPTERS, ids=lambda v: str(v))
def test_adapter_overfits_four_structures(name, options, tiny_dataset, tmp_path):
    graphs, _ = graphset_from_store(DatasetStore(tiny_dataset), "train", _cutoff(name, options))
    four = np.array([0, 5, 9, 14])
    batch = graphs.gather(four)
    potential = _potential(name, options, graphs)
    config = TrainConfig(epochs=150, batch_size=4, learning_rate=5e-3, ema_decay=None,
                         early_stopping_patience=None, plateau_patience=1000)
    small = graphs.subset(four)
    train(potential, small, small, config, seed=0, run_dir=tmp_path)
    potential.eval()
    out = potential(graphs.gather(four))
    rmse = torch.sqrt(torch.mean((out["forces"] - batch.forces) ** 2)).item()
    reference_rms = torch.sqrt(torch.mean(batch.forces**2)).item()
    assert rmse < OVERFIT_THRESHOLD * reference_rms, (name, rmse, reference_rms)
    assert out["node_features"].shape[0] == batch.positions.shape[0]


@pytest.mark.parametrize(("name", "options"), [a for a in ADAPTERS
                                                if a[1].get("direct_forces") is not True
                                                and a[0] not in NOT_GRADIENTS],
                         ids=lambda v: str(v))
def test_forces_are_minus_the_energy_gradient(name, options):
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    dtype, delta, tolerance = PRECISION.get(name, (torch.float64, 1e-5, 1e-6))
    with default_dtype(dtype):
        graphs = GraphSet([atoms], _cutoff(name, options), energies=[0.0],
                          forces=[np.zeros((len(atoms), 3))])
        potential = _potential(name, options, graphs).to(dtype)
        potential.atomic_energies.data = potential.atomic_energies.to(torch.float64)
        potential.eval()

        def energy_and_forces(positions):
            moved = atoms.copy()
            moved.positions = positions
            batch = GraphSet([moved], graphs.cutoff).gather([0], dtype=dtype)
            out = potential(batch)
            return float(out["energy"][0].detach()), out["forces"].detach().numpy()

        _, forces = energy_and_forces(atoms.positions)
        for atom, axis in [(0, 0), (2, 1), (5, 2), (8, 0)]:
            shifted = atoms.positions.copy()
            shifted[atom, axis] += delta
            plus, _ = energy_and_forces(shifted)
            shifted[atom, axis] -= 2 * delta
            minus, _ = energy_and_forces(shifted)
            assert forces[atom, axis] == pytest.approx(-(plus - minus) / (2 * delta),
                                                       abs=tolerance)


def test_direct_force_models_say_so():
    graphs = GraphSet([molecule("CH4")], 5.0, energies=[0.0], forces=[np.zeros((5, 3))])
    assert not _potential("painn", {"direct_forces": True}, graphs).metadata.conservative
    assert _potential("painn", {}, graphs).metadata.conservative
    assert not _potential("dimenetpp", {}, graphs).metadata.conservative
    assert not _potential("equiformer_v2", {}, graphs).metadata.conservative
    assert _potential("gemnet_oc", {}, graphs).metadata.conservative


@pytest.mark.parametrize("name", ["schnet", "painn", "dimenetpp", "gemnet_oc",
                                  "equiformer_v2", "mace", "nequip"])
def test_every_model_has_small_and_paper_sizes(name):
    from gmdbench.models.registry import model_sizes

    sizes = model_sizes(name)
    assert set(sizes) >= {"small", "paper"}
    paper = model_config(name, size="paper")
    assert model_config(name, size="small") != paper


def test_unknown_model_and_bad_option_are_named():
    from gmdbench.errors import GmdError

    with pytest.raises(GmdError, match="unknown model 'nequipp'"):
        model_config("nequipp")
    with pytest.raises(GmdError, match="hidden_chanels"):
        model_config("schnet", {"hidden_chanels": 3})


INVARIANCE_MODELS = [*ADAPTERS, ("ani1x", {}), ("chgnet", {}), ("sevennet", {})]
# fairchem's EquiformerV2 draws a random roll angle for every edge frame at every forward pass
# and applies its S2 activation on a finite grid, so even its l = 0 channels are invariant only
# to ~2e-4 of their norm (two calls on the same frame differ by as much): its own limit, not
# vector channels leaking into the export.
INVARIANCE_TOLERANCE = {"equiformer_v2": 1e-3}


@pytest.mark.parametrize(("name", "options"), INVARIANCE_MODELS, ids=lambda v: str(v))
def test_node_features_are_invariant_under_rotation_and_translation(name, options):
    """CKA, projections and the model-feature distance compare node features across frames:
    they must describe the environment, not its orientation (1e-5 of the feature norm)."""
    from scipy.spatial.transform import Rotation

    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    moved = atoms.copy()
    moved.positions = Rotation.random(random_state=4).apply(atoms.positions) + np.array(
        [0.7, -1.3, 2.1])
    dtype = PRECISION.get(name, (torch.float64,))[0]
    if name in ("chgnet", "sevennet"):
        dtype = torch.float32  # their converters and checkpoints are float32
    with default_dtype(dtype):
        graphs = GraphSet([atoms, moved], _cutoff(name, options))
        torch.manual_seed(0)
        network = build_model(model_config(name, options), graphs.elements,
                              {"avg_num_neighbors": 6.0})
        potential = Potential(network, {}).to(dtype)
        potential.eval()
        features = [potential(graphs.gather([k], dtype=dtype))["node_features"].detach()
                    for k in (0, 1)]
    norm = float(torch.linalg.vector_norm(features[0], dim=-1).max())
    assert features[0].shape == features[1].shape and features[0].shape[0] == len(atoms)
    tolerance = INVARIANCE_TOLERANCE.get(name, 1e-5 if dtype == torch.float64 else 1e-4)
    error = float((features[0] - features[1]).abs().max()) / max(norm, 1e-12)
    assert error <= tolerance, (name, error)


def test_dimenetpp_is_labelled_a_partial_gradient_not_a_direct_head():
    from gmdbench.models.registry import registered_models

    graphs = GraphSet([molecule("CH4")], 5.0, energies=[0.0], forces=[np.zeros((5, 3))])
    metadata = _potential("dimenetpp", {}, graphs).metadata
    assert not metadata.conservative and "detaches" in metadata.forces_note
    assert "partial gradient" in registered_models()["dimenetpp"].forces_note
    assert _potential("equiformer_v2", {}, graphs).metadata.forces_note is None
