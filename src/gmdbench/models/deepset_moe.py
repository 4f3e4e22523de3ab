"""DeepSet-MoE: E = rho(aggregate_i phi(environment of atom i)), phi a mixture of experts.

The GMD-26 authors' proposal (DESIGN.md section 8), built here as an interpretable baseline:

- an edge ``i -> j`` inside the cutoff is described by a Bessel radial basis of its length times
  a smooth cosine envelope, and learned embeddings of both elements;
- a **router** assigns each edge to experts: ``identity`` (the expert of the central atom's
  element), ``spatial`` (experts of pairwise-distance regimes; bin edges in A are a config
  value, and an edge within ``switch_width`` of an edge is shared by the two neighbouring
  experts with smooth switching weights that sum to 1, so the energy and its gradient stay
  continuous as a bond stretches across an edge) or ``learned`` (soft top-k gating on the
  edge features, with the Switch-Transformer load-balancing loss so that no expert starves);
- each expert is an MLP giving a message of 2F channels; per atom, the envelope-weighted messages
  are summed (F scalar channels S_i) and, for the other F channels, summed along the edge unit
  vectors (V_i, F x 3) whose squared norms add angular (three-body) information while staying
  invariant; phi_i = MLP([S_i, |V_i|^2]);
- **aggregation** over the atoms of a structure: ``sum`` (extensive, the standard choice),
  ``mean``, ``attention`` (softmax weights per atom, learned) or ``none`` (per-atom energies
  whose sum only serves to give forces: the model is trained on forces alone and its energies
  are reported as undefined);
- **rho**: ``identity`` (a linear readout of the aggregate to a scalar; with ``sum`` this is a
  sum of atomic energies) or ``mlp``.

Forces are minus the gradient of the energy with respect to positions, whatever the variant.
Every variant is a config of this one class.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from gmdbench.data.graphs import Batch
from gmdbench.models.base import (
    MLIP,
    ModelMetadata,
    conservative_forces,
    element_index_table,
    species_indices,
)

Router = Literal["identity", "spatial", "learned"]
Aggregation = Literal["sum", "mean", "attention", "none"]


class DeepSetMoEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["deepset_moe"] = "deepset_moe"
    cutoff: float = Field(5.0, gt=0)
    num_radial: int = Field(8, ge=1)
    embedding_dim: int = Field(16, ge=1)
    hidden: int = Field(64, ge=1)
    features: int = Field(32, ge=1, description="F, the channels of phi per atom")
    router: Router = "identity"
    bin_edges: list[float] = Field(
        default_factory=lambda: [1.25, 1.8, 2.6],
        description="spatial router: edges (A) between distance regimes; experts = len + 1. "
                    "Defaults: covalent bonds to H (<1.25), heavy-atom bonds (<1.8), geminal "
                    "pairs (<2.6), longer range")
    switch_width: float = Field(
        0.1, gt=0, description="spatial router: half-width (A) of the smooth switch between "
        "neighbouring distance regimes (a quintic smoothstep from edge - w to edge + w)")
    num_experts: int = Field(4, ge=1, description="learned router only")
    top_k: int = Field(2, ge=1, description="learned router: experts kept per edge")
    load_balance_weight: float = Field(0.01, ge=0, description="learned router: weight of "
                                       "the load-balancing loss added to training")
    aggregation: Aggregation = "sum"
    rho: Literal["identity", "mlp"] = "identity"

    @model_validator(mode="after")
    def _check(self) -> DeepSetMoEConfig:
        if self.bin_edges != sorted(self.bin_edges) or not all(e > 0 for e in self.bin_edges):
            raise ValueError("bin_edges must be positive and increasing")
        if self.router == "learned" and self.top_k > self.num_experts:
            raise ValueError(f"top_k {self.top_k} exceeds num_experts {self.num_experts}")
        return self


def smooth_step(x: torch.Tensor) -> torch.Tensor:
    """0 below -1, 1 above 1, the quintic 6t^5 - 15t^4 + 10t^3 of t = (x + 1) / 2 between:
    continuous with its first and second derivatives, so forces and their gradients are too."""
    t = ((x + 1.0) / 2.0).clamp(0.0, 1.0)
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)


def spatial_weights(lengths: torch.Tensor, bin_edges: torch.Tensor, width: float
                    ) -> torch.Tensor:
    """(n_edges, len(bin_edges) + 1) weights of the distance regimes; each row sums to 1.

    s_k(r) = smooth_step((r - b_k) / w) is 0 below edge k and 1 above it; regime k gets
    s_k - s_{k+1} (with s_0 = 1, s_K = 0), a telescoping sum equal to 1 and non-negative because
    s_k >= s_{k+1} wherever b_k < b_{k+1}. Far from every edge exactly one weight is 1, as a hard
    bin would give; within w of an edge the two neighbouring experts share the edge.
    """
    steps = smooth_step((lengths.unsqueeze(-1) - bin_edges) / width)
    ones = torch.ones_like(lengths).unsqueeze(-1)
    upper = torch.cat([ones, steps], dim=-1)
    lower = torch.cat([steps, torch.zeros_like(ones)], dim=-1)
    return upper - lower


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class BesselBasis(nn.Module):
    """sqrt(2/c) sin(n pi r / c) / r, n = 1..N (DimeNet's radial basis)."""

    def __init__(self, cutoff: float, num_radial: int):
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("frequencies", torch.arange(1, num_radial + 1) * math.pi / cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1)
        return math.sqrt(2.0 / self.cutoff) * torch.sin(self.frequencies * r) / r


def cosine_envelope(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 (cos(pi r / c) + 1) inside the cutoff, 0 outside: smooth energies at the cutoff."""
    return torch.where(r < cutoff, 0.5 * (torch.cos(math.pi * r / cutoff) + 1.0),
                       torch.zeros_like(r))


class DeepSetMoE(MLIP):
    """The DeepSet-MoE network; ``routing`` and ``expert_scale`` serve the routing metrics."""

    def __init__(self, config: DeepSetMoEConfig, elements: list[int]):
        super().__init__()
        self.config = config
        self.cutoff = float(config.cutoff)
        self.elements = sorted(int(z) for z in elements)
        self.register_buffer("element_index", element_index_table(self.elements))
        if config.router == "identity":
            self.num_experts = len(self.elements)
        elif config.router == "spatial":
            self.num_experts = len(config.bin_edges) + 1
        else:
            self.num_experts = config.num_experts
        self.register_buffer("bin_edges", torch.tensor(config.bin_edges))
        self.radial = BesselBasis(config.cutoff, config.num_radial)
        self.embedding = nn.Embedding(len(self.elements), config.embedding_dim)
        edge_in = config.num_radial + 2 * config.embedding_dim
        f = config.features
        self.experts = nn.ModuleList(_mlp([edge_in, config.hidden, config.hidden, 2 * f])
                                     for _ in range(self.num_experts))
        self.gate = nn.Linear(edge_in, self.num_experts) if config.router == "learned" else None
        self.atom_mlp = _mlp([2 * f, config.hidden, f])
        if config.aggregation == "none" or config.rho == "identity":
            self.readout = nn.Linear(f, 1, bias=False)
        else:
            self.readout = _mlp([f, config.hidden, 1])
        self.attention = nn.Linear(f, 1) if config.aggregation == "attention" else None
        energy_defined = config.aggregation != "none"
        self.metadata = ModelMetadata(
            name="deepset_moe", library="gmd-bench", library_version=_own_version(),
            conservative=True, energy_defined=energy_defined,
            variant=f"{config.router}, {config.aggregation}, rho={config.rho}")

    # -- routing ---------------------------------------------------------------------------
    def _species(self, batch: Batch) -> torch.Tensor:
        species = species_indices(self.element_index, batch.numbers, "DeepSet-MoE")
        return species

    def route(self, edge_features: torch.Tensor, lengths: torch.Tensor, centre_species:
              torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Routing weights (n_edges, n_experts) and, for the learned router, the balance loss."""
        k = self.num_experts
        if self.config.router == "identity":
            return nn.functional.one_hot(centre_species, k).to(edge_features.dtype), None
        if self.config.router == "spatial":  # differentiable in the lengths: forces see it
            return spatial_weights(lengths, self.bin_edges.to(lengths.dtype),
                                   self.config.switch_width).to(edge_features.dtype), None
        logits = self.gate(edge_features)
        probabilities = torch.softmax(logits, dim=-1)
        top, chosen = torch.topk(probabilities, self.config.top_k, dim=-1)
        weights = torch.zeros_like(probabilities).scatter(-1, chosen, top)
        weights = weights / weights.sum(-1, keepdim=True)
        # Switch-Transformer balance loss: k * sum_e (share of edges routed to e) * (mean gate e)
        routed = torch.zeros_like(probabilities).scatter(-1, chosen, 1.0).mean(0) \
            / self.config.top_k
        balance = k * torch.sum(routed.detach() * probabilities.mean(0))
        return weights, balance

    # -- forward ---------------------------------------------------------------------------
    def forward(self, batch: Batch, expert_scale: torch.Tensor | None = None,
                compute_forces: bool = True) -> dict[str, torch.Tensor]:
        """Energies, forces, node features and the routing weights (n_edges, K).

        ``expert_scale`` (K,) multiplies each expert's messages: the routing metrics integrate
        the energy along it to attribute the energy to experts (forces are then not needed).
        """
        species = self._species(batch)
        if compute_forces and not batch.positions.requires_grad:
            batch.positions.requires_grad_(True)
        i, j = batch.edge_index
        vectors = batch.edge_vectors()
        lengths = torch.linalg.vector_norm(vectors, dim=-1)
        envelope = cosine_envelope(lengths, self.cutoff).unsqueeze(-1)
        edge_features = torch.cat([self.radial(lengths), self.embedding(species[i]),
                                   self.embedding(species[j])], dim=-1)
        weights, balance = self.route(edge_features, lengths, species[i])
        if expert_scale is not None:
            weights = weights * expert_scale
        f = self.config.features
        messages = edge_features.new_zeros((lengths.shape[0], 2 * f))
        for expert, network in enumerate(self.experts):
            mask = weights[:, expert] != 0
            if bool(mask.any()):
                messages = messages.index_add(
                    0, mask.nonzero().squeeze(-1),
                    weights[mask, expert, None] * network(edge_features[mask]))
        messages = messages * envelope
        n_atoms = batch.positions.shape[0]
        scalar = messages.new_zeros((n_atoms, f)).index_add(0, i, messages[:, :f])
        unit = vectors / lengths.unsqueeze(-1)
        vector = messages.new_zeros((n_atoms, f, 3)).index_add(
            0, i, messages[:, f:, None] * unit[:, None, :])
        phi = self.atom_mlp(torch.cat([scalar, (vector**2).sum(-1)], dim=-1))
        energy = self._aggregate(phi, batch)
        out = {"energy": energy, "node_features": phi, "routing": weights.detach()}
        if compute_forces:
            out["forces"] = conservative_forces(energy, batch.positions, self.training)
        if balance is not None and self.config.load_balance_weight > 0:
            out["auxiliary_loss"] = self.config.load_balance_weight * balance
        return out

    def _aggregate(self, phi: torch.Tensor, batch: Batch) -> torch.Tensor:
        s = batch.n_structures
        aggregation = self.config.aggregation
        if aggregation == "none":  # per-atom outputs; their sum only gives forces
            atomic = self.readout(phi).squeeze(-1)
            return atomic.new_zeros(s).index_add(0, batch.batch, atomic)
        if aggregation == "attention":
            scores = self.attention(phi).squeeze(-1)
            top = scores.new_full((s,), -torch.inf).scatter_reduce(
                0, batch.batch, scores, reduce="amax")
            weight = torch.exp(scores - top[batch.batch])
            total = weight.new_zeros(s).index_add(0, batch.batch, weight)
            phi = phi * (weight / total[batch.batch]).unsqueeze(-1)
        pooled = phi.new_zeros((s, phi.shape[1])).index_add(0, batch.batch, phi)
        if aggregation == "mean":
            pooled = pooled / batch.n_atoms.to(pooled.dtype).unsqueeze(-1)
        return self.readout(pooled).squeeze(-1)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.readout.parameters())


def _own_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gmd-bench")
    except PackageNotFoundError:
        return "source"


def build_deepset_moe(config: DeepSetMoEConfig, elements: list[int], statistics: dict
                      ) -> MLIP:
    return DeepSetMoE(config, elements)
