"""Routing of DeepSet-MoE: the routers do what they say, the metrics measure what they claim."""

import math

import numpy as np
import pytest
import torch
from ase.build import molecule

from gmdbench.analysis.routing import (
    atom_fragment_labels,
    entropy_bits,
    expert_energy_ig,
    mutual_information_bits,
)
from gmdbench.data.graphs import batch_from_atoms
from gmdbench.models.deepset_moe import DeepSetMoE, DeepSetMoEConfig


def _ethanol_batch(cutoff=5.0):
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.03, seed=2)
    return batch_from_atoms([atoms, molecule("H2O")], cutoff)


def _network(**options):
    torch.manual_seed(0)
    return DeepSetMoE(DeepSetMoEConfig(**options), [1, 6, 8]).double()


def test_identity_router_sends_each_atoms_edges_to_its_elements_expert():
    batch = _ethanol_batch().to(torch.float64)
    weights = _network(router="identity")(batch)["routing"]
    centre_numbers = batch.numbers[batch.edge_index[0]]
    expected = torch.as_tensor([[1, 6, 8].index(int(z)) for z in centre_numbers])
    assert torch.equal(weights.argmax(-1), expected)
    assert torch.all(weights.sum(-1) == 1) and torch.all((weights == 0) | (weights == 1))


def test_spatial_router_bins_edges_by_length():
    batch = _ethanol_batch().to(torch.float64)
    edges = [1.25, 1.8, 2.6]
    weights = _network(router="spatial", bin_edges=edges)(batch)["routing"]
    lengths = torch.linalg.vector_norm(batch.edge_vectors(), dim=-1).detach().numpy()
    assert np.array_equal(weights.argmax(-1).numpy(), np.searchsorted(edges, lengths))


def test_learned_router_keeps_top_k_and_adds_a_balance_loss():
    batch = _ethanol_batch().to(torch.float64)
    out = _network(router="learned", num_experts=4, top_k=2)(batch)
    weights = out["routing"]
    assert torch.all((weights > 0).sum(-1) == 2)
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[0], dtype=weights.dtype))
    assert float(out["auxiliary_loss"].detach()) > 0


def test_mutual_information_is_one_bit_for_a_matching_routing_and_near_zero_for_random():
    rng = np.random.default_rng(0)
    fragments = np.array(["carboxyl", "methylene"] * 5000)
    matching = np.where(fragments == "carboxyl", 3, 1)
    assert mutual_information_bits(matching, fragments) == pytest.approx(1.0, abs=1e-12)
    random_experts = rng.integers(0, 4, size=fragments.size)
    assert mutual_information_bits(random_experts, fragments) < 0.01
    assert entropy_bits(np.full(4, 0.25)) == pytest.approx(2.0)


def test_energy_shares_are_complete():
    """Integrated gradients: the experts' parts add up to E(all messages) - E(no messages)."""
    batch = _ethanol_batch().to(torch.float64)
    network = _network(router="spatial")
    ig = expert_energy_ig(network, batch, steps=64)
    full = network(batch, compute_forces=False)["energy"].sum()
    empty = network(batch, expert_scale=torch.zeros(4, dtype=torch.float64),
                    compute_forces=False)["energy"].sum()
    assert ig.sum() == pytest.approx(float(full - empty), rel=1e-3)


def test_hydrogens_inherit_the_fragment_of_their_heavy_atom():
    labels = atom_fragment_labels("CCO", (("hydroxyl", "[OX2H1][#6;!$([#6]=[O,S,N])]"),
                                          ("methyl", "[CH3X4]")))
    # RDKit order: C, C, O, then H on C0 (3), H on C1 (2), H on O (1)
    assert labels[:3] == ("methyl", "hydroxyl", "hydroxyl")
    assert labels[3:6] == ("methyl",) * 3
    assert labels[-1] == "hydroxyl"


def _dimer_energy_and_force(network, r: float) -> tuple[float, float]:
    """Energy of an O-H pair at distance r and the force on H along the bond."""
    from ase import Atoms

    atoms = Atoms("OH", positions=[[0, 0, 0], [r, 0, 0]])
    batch = batch_from_atoms([atoms], 5.0, dtype=torch.float64)
    out = network(batch)
    return float(out["energy"][0].detach()), float(out["forces"][1, 0])


def test_spatial_router_energy_is_continuous_across_every_bin_edge():
    """A hard bin made the energy jump by ~7e-3 network units at 1.25 A; smooth switching
    weights keep it continuous, and the force stays minus its slope on both sides."""
    network = _network(router="spatial")
    for edge in network.config.bin_edges:
        below, _ = _dimer_energy_and_force(network, edge - 1e-9)
        above, _ = _dimer_energy_and_force(network, edge + 1e-9)
        assert abs(above - below) < 1e-6, edge
        for r in (edge - 0.05, edge, edge + 0.05, edge + network.config.switch_width):
            h = 1e-5
            slope = (_dimer_energy_and_force(network, r + h)[0]
                     - _dimer_energy_and_force(network, r - h)[0]) / (2 * h)
            assert _dimer_energy_and_force(network, r)[1] == pytest.approx(-slope, abs=1e-6)


def test_spatial_weights_sum_to_one_and_are_hard_far_from_edges():
    from gmdbench.models.deepset_moe import spatial_weights

    lengths = torch.linspace(0.5, 4.9, 500, dtype=torch.float64)
    edges = torch.tensor([1.25, 1.8, 2.6], dtype=torch.float64)
    weights = spatial_weights(lengths, edges, 0.1)
    assert torch.allclose(weights.sum(-1), torch.ones(500, dtype=torch.float64))
    assert bool((weights >= 0).all())
    far = (lengths[:, None] - edges).abs().min(-1).values > 0.1
    assert bool(((weights[far] == 0) | (weights[far] == 1)).all())


def test_energy_share_is_in_ev():
    """IG per frame, in eV, adds up (to the midpoint rule) to the potential's energy above the
    no-message baseline: the network's output times the force scale."""
    from gmdbench.analysis.routing import routing_metrics
    from gmdbench.data.graphs import GraphSet
    from gmdbench.models.base import Potential

    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.03, seed=2)
    graphs = GraphSet([atoms], 5.0)
    network = _network(router="spatial")
    potential = Potential(network, {1: -10.0, 6: -40.0, 8: -70.0}, scale=0.37).double()
    metrics = routing_metrics(network, graphs, [{"smiles": "CCO"}], {"hydroxyl": "[OX2H]"},
                              dtype=torch.float64, energy_scale=float(potential.scale))
    batch = graphs.gather([0], torch.float64)
    full = float(potential(batch)["energy"][0])
    empty_network = network(graphs.gather([0], torch.float64),
                            expert_scale=torch.zeros(network.num_experts, dtype=torch.float64),
                            compute_forces=False)["energy"]
    empty = float(potential.scale) * float(empty_network[0]) + float(
        potential.reference_energy(batch)[0])
    assert sum(metrics["expert_energy_ig_eV_per_frame"]) == pytest.approx(full - empty,
                                                                          rel=2e-3)


def test_deepset_building_blocks_by_hand():
    """The quintic smooth step at hand-worked points, the Bessel basis and cosine envelope at
    chosen radii (the envelope is 0 at the cutoff itself), regime weights shared half and half
    exactly on an edge, and an MLP with activations between its layers only."""
    import math

    from gmdbench.models.deepset_moe import (
        BesselBasis,
        _mlp,
        cosine_envelope,
        smooth_step,
        spatial_weights,
    )

    x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    # t = 0.75: 6 t^5 - 15 t^4 + 10 t^3 = 0.896484375 (a cubic 3t^2 - 2t^3 gives 0.84375)
    assert smooth_step(x).tolist() == pytest.approx([0.0, 0.0, 0.5, 0.896484375, 1.0, 1.0])
    basis = BesselBasis(cutoff=4.0, num_radial=3).double()
    r = torch.tensor([1.0, 2.0], dtype=torch.float64)
    expected = [[math.sqrt(0.5) * math.sin(n * math.pi * v / 4.0) / v for n in (1, 2, 3)]
                for v in (1.0, 2.0)]
    assert basis(r).tolist() == [pytest.approx(row, abs=1e-6) for row in expected]  # float32 buffer
    envelope = cosine_envelope(torch.tensor([0.0, 2.0, 4.0, 5.0], dtype=torch.float64), 4.0)
    assert envelope.tolist() == pytest.approx([1.0, 0.5, 0.0, 0.0])
    edges = torch.tensor([1.0, 2.0], dtype=torch.float64)
    on_edges = spatial_weights(torch.tensor([1.0, 2.0, 1.5], dtype=torch.float64), edges, 0.1)
    assert on_edges.tolist() == [pytest.approx([0.5, 0.5, 0.0]), pytest.approx([0.0, 0.5, 0.5]),
                                 pytest.approx([0.0, 1.0, 0.0])]
    layers = [type(layer).__name__ for layer in _mlp([3, 4, 5, 2])]
    assert layers == ["Linear", "SiLU", "Linear", "SiLU", "Linear"]
    layers = [type(layer).__name__ for layer in _mlp([3, 4, 5, 6, 2])]  # deeper: the same rule
    assert layers == ["Linear", "SiLU", "Linear", "SiLU", "Linear", "SiLU", "Linear"]


def test_deepset_router_config_defaults_and_bounds_are_the_documented_ones():
    """Defaults as the field descriptions and module docstring give them (identity router,
    sum, linear rho; regimes split at 1.25, 1.8, 2.6 A and switched over 0.1 A; 4 learned
    experts, 2 kept, balance weight 0.01), and each bound met exactly is accepted while the
    value past it is refused."""
    from pydantic import ValidationError

    config = DeepSetMoEConfig()
    assert (config.cutoff, config.num_radial, config.embedding_dim, config.hidden,
            config.features) == (5.0, 8, 16, 64, 32)
    assert (config.router, config.aggregation, config.rho) == ("identity", "sum", "identity")
    assert config.bin_edges == [1.25, 1.8, 2.6] and config.switch_width == 0.1
    assert (config.num_experts, config.top_k, config.load_balance_weight) == (4, 2, 0.01)
    for field, at_bound, past in (("num_radial", 1, 0), ("embedding_dim", 1, 0),
                                  ("hidden", 1, 0), ("features", 1, 0), ("num_experts", 1, 0),
                                  ("top_k", 1, 0), ("load_balance_weight", 0.0, -1e-9),
                                  ("cutoff", 1e-9, 0.0), ("switch_width", 1e-9, 0.0)):
        DeepSetMoEConfig(**{field: at_bound})
        with pytest.raises(ValidationError, match=field):
            DeepSetMoEConfig(**{field: past})
    DeepSetMoEConfig(router="learned", num_experts=3, top_k=3)
    with pytest.raises(ValidationError, match="top_k 4 exceeds num_experts 3"):
        DeepSetMoEConfig(router="learned", num_experts=3, top_k=4)
    for router in ("identity", "spatial"):  # only the learned router keeps top-k experts
        DeepSetMoEConfig(router=router, num_experts=3, top_k=4)
    DeepSetMoEConfig(bin_edges=[1e-9, 1.0])
    for edges in ([0.0, 1.0], [-1.0, 1.0], [2.0, 1.0], [math.nan, 1.0], [1.0, math.nan]):
        with pytest.raises(ValidationError, match="bin_edges must be positive and increasing"):
            DeepSetMoEConfig(bin_edges=edges)


def test_deepset_aggregations_by_hand():
    """With the same weights (same seed, same modules before the attention head), ``none``
    sums per-atom readouts, which for a linear rho is ``sum``'s energy; ``mean`` is ``sum``
    over the atom count; ``attention`` is rho of the softmax-weighted sum of phi within each
    structure (ethanol and water in one batch)."""
    batch = _ethanol_batch().to(torch.float64)
    energies = {aggregation: _network(aggregation=aggregation)(batch, compute_forces=False)
                for aggregation in ("sum", "none", "mean")}
    summed = energies["sum"]["energy"].detach()
    assert torch.allclose(energies["none"]["energy"].detach(), summed, rtol=1e-12)
    n_atoms = batch.n_atoms.to(torch.float64)
    assert torch.allclose(energies["mean"]["energy"].detach() * n_atoms, summed, rtol=1e-12)
    network = _network(aggregation="attention")
    out = network(batch, compute_forces=False)
    phi = out["node_features"].detach()
    scores = network.attention(phi).squeeze(-1).detach()
    expected = []
    for structure in range(batch.n_structures):
        members = batch.batch == structure
        weight = torch.softmax(scores[members], dim=0)
        expected.append(network.readout((weight[:, None] * phi[members]).sum(0)).item())
    assert out["energy"].detach().tolist() == pytest.approx(expected, rel=1e-12)


def test_sum_with_an_mlp_rho_is_rho_of_the_summed_phi():
    """rho(sum_i phi_i), not sum_i rho(phi_i): the two agree only for a linear rho."""
    batch = _ethanol_batch().to(torch.float64)
    network = _network(aggregation="sum", rho="mlp")
    out = network(batch, compute_forces=False)
    phi = out["node_features"].detach()
    expected = [network.readout(phi[batch.batch == structure].sum(0)).item()
                for structure in range(batch.n_structures)]
    assert out["energy"].detach().tolist() == pytest.approx(expected, rel=1e-12)


def test_an_energy_only_call_leaves_positions_without_a_gradient():
    """Forces not asked for: no graph is kept through the positions (evaluation and the
    routing metrics call the network this way)."""
    batch = _ethanol_batch().to(torch.float64)
    network = _network()
    network(batch, compute_forces=False)
    assert not batch.positions.requires_grad
    assert "forces" in network(batch) and batch.positions.requires_grad


def test_learned_router_weights_and_balance_loss_by_hand():
    """Top-k of the gate's softmax, renormalised; balance = K * sum_e (share of the edges'
    top-k slots that go to e) * (mean gate probability of e), times its weight, and no
    auxiliary loss at weight 0."""
    network = _network(router="learned", num_experts=4, top_k=2)
    torch.manual_seed(1)
    features = torch.randn(7, network.gate.in_features, dtype=torch.float64)
    weights, balance = network.route(features, torch.ones(7, dtype=torch.float64),
                                     torch.zeros(7, dtype=torch.long))
    probabilities = torch.softmax(network.gate(features), dim=-1).detach().numpy()
    chosen = np.argsort(-probabilities, axis=1)[:, :2]
    expected = np.zeros_like(probabilities)
    for row, experts in enumerate(chosen):
        expected[row, experts] = probabilities[row, experts] / probabilities[row, experts].sum()
    np.testing.assert_allclose(weights.detach().numpy(), expected, rtol=1e-12)
    share = np.bincount(chosen.ravel(), minlength=4) / chosen.size
    assert float(balance.detach()) == pytest.approx(4 * np.sum(share * probabilities.mean(0)),
                                                    rel=1e-12)
    batch = _ethanol_batch().to(torch.float64)
    weighted = _network(router="learned", num_experts=4, top_k=2, load_balance_weight=0.5)
    balances = []
    route = weighted.route

    def recording_route(*args):
        result = route(*args)
        balances.append(result[1])
        return result

    weighted.route = recording_route
    loss = weighted(batch, compute_forces=False)["auxiliary_loss"]
    assert float(loss.detach()) == pytest.approx(0.5 * float(balances[0].detach()), rel=1e-12)
    silent = _network(router="learned", num_experts=4, top_k=2, load_balance_weight=0.0)
    assert "auxiliary_loss" not in silent(batch, compute_forces=False)


@pytest.mark.parametrize("aggregation", ["none", "sum", "mean", "attention"])
@pytest.mark.parametrize("rho", ["identity", "mlp"])
def test_deepset_rho_is_an_mlp_only_where_a_set_is_pooled_and_rho_asks_for_one(aggregation, rho):
    network = _network(aggregation=aggregation, rho=rho, features=8, hidden=16)
    if aggregation != "none" and rho == "mlp":
        assert [type(layer) for layer in network.readout] == [
            torch.nn.Linear, torch.nn.SiLU, torch.nn.Linear]
        assert (network.readout[0].in_features, network.readout[-1].out_features) == (8, 1)
    else:
        assert isinstance(network.readout, torch.nn.Linear) and network.readout.bias is None
    assert (network.attention is not None) == (aggregation == "attention")
    # forces are minus the energy's gradient for every variant; a total energy exists only
    # where the atoms' contributions are pooled
    assert network.metadata.conservative is True
    assert network.metadata.energy_defined == (aggregation != "none")
    assert network.metadata.variant == f"identity, {aggregation}, rho={rho}"


def test_deepset_edge_input_is_the_radial_basis_and_both_embeddings():
    # 6 radial + 2 x 3 embedding = 12 edge inputs: bits that overlap, so 6 ^ 6 would be 0
    network = _network(num_radial=6, embedding_dim=3, features=4, hidden=8)
    assert all(expert[0].in_features == 12 for expert in network.experts)
    out = network(_ethanol_batch().to(torch.float64))  # ethanol and water: 12 atoms
    assert torch.isfinite(out["energy"]).all() and out["forces"].shape == (12, 3)


@pytest.mark.parametrize(("router", "experts"), [("identity", 3), ("spatial", 4), ("learned", 4)])
def test_deepset_has_a_gate_only_for_the_learned_router(router, experts):
    network = _network(router=router, features=4, hidden=8)
    assert network.num_experts == experts and len(network.experts) == experts
    if router == "learned":
        assert (network.gate.in_features, network.gate.out_features) == (8 + 2 * 16, experts)
    else:  # an unused gate would be trained parameters that change nothing
        assert network.gate is None


def test_spatial_router_counts_its_experts_from_the_bin_edges_not_num_experts():
    """num_experts is the learned router's setting; a spatial router has one expert per
    distance regime, len(bin_edges) + 1, whatever num_experts says, and a learned router
    num_experts whatever the bin edges say (the defaults make both 4, so they are set apart
    here)."""
    network = _network(router="spatial", bin_edges=[1.5], num_experts=6, features=4, hidden=8)
    assert network.num_experts == 2 and len(network.experts) == 2
    assert network(_ethanol_batch().to(torch.float64))["routing"].shape[1] == 2
    learned = _network(router="learned", bin_edges=[1.5], num_experts=6, features=4, hidden=8)
    assert learned.num_experts == 6 and learned.gate.out_features == 6


def test_a_model_run_from_a_source_tree_says_so(monkeypatch):
    """Without installed package metadata (a bare source tree), the recorded library version
    is "source", not an error."""
    import importlib.metadata

    from gmdbench.models.deepset_moe import _own_version

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    assert _own_version() == importlib.metadata.version("gmd-bench")
    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert _own_version() == "source"


def test_attention_pooling_is_stable_for_large_scores():
    """Softmax is unchanged by a constant added to every score; the pooling subtracts each
    structure's largest score before exp, so scores far beyond float32's exp range (exp(89)
    overflows, exp(-104) underflows) give the same energies as small ones instead of
    inf / inf or 0 / 0 = nan, for scores far above and far below zero alike."""
    batch = _ethanol_batch()
    network = DeepSetMoE(DeepSetMoEConfig(aggregation="attention"), [1, 6, 8])
    torch.manual_seed(0)
    for parameter in network.parameters():
        parameter.data.normal_(0.0, 0.3)
    reference = network(batch, compute_forces=False)["energy"].detach()
    with torch.no_grad():
        network.attention.bias += 100.0
    shifted = network(batch, compute_forces=False)["energy"].detach()
    assert torch.isfinite(shifted).all()
    assert torch.allclose(shifted, reference, rtol=1e-5)
    with torch.no_grad():
        network.attention.bias -= 300.0  # every score near -200: the largest is negative
    shifted = network(batch, compute_forces=False)["energy"].detach()
    assert torch.isfinite(shifted).all()
    assert torch.allclose(shifted, reference, rtol=1e-5)


def test_phi_reads_enveloped_messages_and_their_unit_vector_sum_by_hand():
    """phi_i = MLP([S_i, |V_i|^2]) with S_i = sum_j c(r_ij) m_ij[:F] and V_i = sum_j c(r_ij)
    m_ij[F:] r_ij / |r_ij|, c the cosine envelope, m_ij the expert's message: checked on a
    bent water, whose oxygen sums two unit vectors at an angle (so a vector scaled by its
    length, or an envelope added instead of multiplied, gives other inputs)."""
    import math

    atoms = molecule("H2O")
    atoms.positions[1] *= 1.3  # two O-H lengths, neither 1 A
    batch = batch_from_atoms([atoms], 5.0, dtype=torch.float64)
    network = _network(router="identity", features=4, hidden=8)
    outputs, seen = {}, []
    for index, expert in enumerate(network.experts):
        expert.register_forward_hook(
            lambda _m, _i, out, index=index: outputs.__setitem__(index, out.detach()))
    network.atom_mlp.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    network(batch, compute_forces=False)
    i, j = batch.edge_index
    vectors = (batch.positions[j] - batch.positions[i]).detach()
    lengths = vectors.norm(dim=1)
    envelope = 0.5 * (torch.cos(math.pi * lengths / 5.0) + 1.0)
    species = torch.tensor([network.elements.index(int(z)) for z in batch.numbers])
    messages = torch.zeros((len(lengths), 8), dtype=torch.float64)
    for index, out in outputs.items():
        messages[species[i] == index] = out
    messages = messages * envelope[:, None]
    f = 4
    scalar = torch.zeros((3, f), dtype=torch.float64).index_add(0, i, messages[:, :f])
    vector = torch.zeros((3, f, 3), dtype=torch.float64).index_add(
        0, i, messages[:, f:, None] * (vectors / lengths[:, None])[:, None, :])
    expected = torch.cat([scalar, (vector**2).sum(-1)], dim=1)
    assert torch.allclose(seen[0].detach(), expected, rtol=1e-12, atol=1e-14)


def test_each_expert_computes_only_the_edges_routed_to_it():
    """The mixture is sparse: an expert's network sees its own edges, not every edge times a
    zero weight (same energies, K times the work)."""
    batch = _ethanol_batch().to(torch.float64)
    network = _network(router="identity")
    seen = []
    for expert in network.experts:
        expert.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape[0]))
    network(batch)
    centre_numbers = batch.numbers[batch.edge_index[0]].tolist()
    assert seen == [centre_numbers.count(z) for z in (1, 6, 8)]
