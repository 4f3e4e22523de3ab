"""SchNet and PaiNN from fairchem-core 1.10 (``fairchem.core.models``), the GMD-26 authors' code.

The batch becomes the graph fairchem expects with ``otf_graph=False``: ``edge_index`` in its
(neighbour, centre) order, integer ``cell_offsets``, ``neighbors`` per structure; molecules get
zero offsets, so fairchem's pure-torch PBC distance path serves them unchanged.
Conservative forces are computed here as minus the gradient of the energy (fairchem is asked for
energies only): fairchem 1.10's PaiNN differentiates its node features, not its energy, when
``direct_forces=False``. Node features are read with forward hooks (a torch extension point).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from gmdbench.data.graphs import Batch
from gmdbench.models.base import MLIP, ModelMetadata, conservative_forces, isolation_box


class SchNetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["schnet"] = "schnet"
    hidden_channels: int = Field(64, ge=1)
    num_filters: int = Field(64, ge=1)
    num_interactions: int = Field(3, ge=1)
    num_gaussians: int = Field(25, ge=1)
    cutoff: float = Field(5.0, gt=0)


class PaiNNConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["painn"] = "painn"
    hidden_channels: int = Field(64, ge=1)
    num_layers: int = Field(3, ge=1)
    num_rbf: int = Field(32, ge=1)
    cutoff: float = Field(5.0, gt=0)
    direct_forces: bool = Field(
        False, description="fairchem's direct force head (non-conservative) instead of -dE/dx")


def _fairchem_graph(batch: Batch):
    from torch_geometric.data import Data

    centre, neighbour = batch.edge_index
    neighbors = torch.bincount(batch.batch[centre], minlength=batch.n_structures)
    return Data(
        pos=batch.positions,
        atomic_numbers=batch.numbers,
        natoms=batch.n_atoms,
        batch=batch.batch,
        cell=batch.cell,
        cell_offsets=batch.shifts,
        edge_index=torch.stack([neighbour, centre]),
        neighbors=neighbors,
    )


class _FairchemAdapter(MLIP):
    def __init__(self, model: torch.nn.Module, feature_module: torch.nn.Module,
                 metadata: ModelMetadata, cutoff: float, gradient_forces: bool | None = None):
        super().__init__()
        self.model = model
        # forces as -dE/dx computed here (the default for conservative models), or the model's
        self.gradient_forces = metadata.conservative if gradient_forces is None \
            else gradient_forces
        self.metadata = metadata
        self.cutoff = cutoff
        self._features: torch.Tensor | None = None
        feature_module.register_forward_hook(self._keep_features)

    def _keep_features(self, module, inputs, output) -> None:
        self._features = inputs[0]

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = self.model(_fairchem_graph(batch))
        energy = out["energy"].reshape(-1)
        if self.gradient_forces:
            forces = conservative_forces(energy, batch.positions, self.training)
        else:
            forces = out["forces"]
        return {"energy": energy, "forces": forces, "node_features": self._features}


def _metadata(name: str, conservative: bool, forces_note: str | None = None) -> ModelMetadata:
    return ModelMetadata(name=name, library="fairchem-core",
                         library_version=version("fairchem-core"), conservative=conservative,
                         forces_note=forces_note)


def build_schnet(config: SchNetConfig, elements: list[int], statistics: dict) -> MLIP:
    from fairchem.core.models.schnet import SchNetWrap

    model = SchNetWrap(use_pbc=True, regress_forces=False, otf_graph=False,
                       hidden_channels=config.hidden_channels, num_filters=config.num_filters,
                       num_interactions=config.num_interactions,
                       num_gaussians=config.num_gaussians, cutoff=config.cutoff)
    return _FairchemAdapter(model, model.lin1, _metadata("schnet", True), config.cutoff)


def build_painn(config: PaiNNConfig, elements: list[int], statistics: dict) -> MLIP:
    from fairchem.core.models.painn.painn import PaiNN

    model = PaiNN(hidden_channels=config.hidden_channels, num_layers=config.num_layers,
                  num_rbf=config.num_rbf, cutoff=config.cutoff, max_neighbors=10_000,
                  regress_forces=config.direct_forces, direct_forces=config.direct_forces,
                  use_pbc=True, otf_graph=False)
    return _FairchemAdapter(model, model.out_energy, _metadata("painn", not config.direct_forces),
                            config.cutoff)


class DimeNetPPConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["dimenetpp"] = "dimenetpp"
    hidden_channels: int = 32
    num_blocks: int = 2
    int_emb_size: int = 16
    basis_emb_size: int = 4
    out_emb_channels: int = 32
    num_spherical: int = 7
    num_radial: int = 6
    cutoff: float = Field(5.0, gt=0)


class GemNetOCConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["gemnet_oc"] = "gemnet_oc"
    num_spherical: int = 5
    num_radial: int = 16
    num_blocks: int = 2
    emb_size_atom: int = 32
    emb_size_edge: int = 32
    emb_size_trip_in: int = 16
    emb_size_trip_out: int = 16
    emb_size_quad_in: int = 8
    emb_size_quad_out: int = 8
    emb_size_aint_in: int = 8
    emb_size_aint_out: int = 8
    emb_size_rbf: int = 8
    emb_size_cbf: int = 8
    emb_size_sbf: int = 8
    num_before_skip: int = 1
    num_after_skip: int = 1
    num_concat: int = 1
    num_atom: int = 1
    num_output_afteratom: int = 1
    num_atom_emb_layers: int = 1
    num_global_out_layers: int = 1
    quad_interaction: bool = False
    atom_edge_interaction: bool = False
    edge_atom_interaction: bool = False
    atom_interaction: bool = False
    cutoff: float = Field(5.0, gt=0)
    max_neighbors: int = 30
    direct_forces: bool = False


class EquiformerV2Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["equiformer_v2"] = "equiformer_v2"
    num_layers: int = 2
    sphere_channels: int = 16
    attn_hidden_channels: int = 16
    num_heads: int = 2
    attn_alpha_channels: int = 8
    attn_value_channels: int = 4
    ffn_hidden_channels: int = 32
    lmax: int = 2
    mmax: int = 1
    edge_channels: int = 16
    num_distance_basis: int = 32
    cutoff: float = Field(5.0, gt=0)
    max_neighbors: int = 500


def _boxed(batch: Batch, cutoff: float) -> Batch:
    """Molecules (no cell) placed in a cubic periodic box larger than themselves + 2 cutoffs.

    For models that build their own graph with fairchem's pure-torch ``radius_graph_pbc``
    (GemNet-OC builds several graphs with their own cutoffs): no atom meets a periodic image.
    """
    from dataclasses import replace

    no_cell = batch.cell.abs().sum(dim=(1, 2)) == 0
    if not bool(no_cell.any()):
        return batch
    box = torch.as_tensor(isolation_box(batch.positions.detach().cpu().numpy(), cutoff),
                          dtype=batch.cell.dtype, device=batch.cell.device)
    cell = torch.where(no_cell[:, None, None], box, batch.cell)
    pbc = batch.pbc | no_cell[:, None]
    return replace(batch, cell=cell, pbc=pbc)


class _GemNetOCAdapter(_FairchemAdapter):
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return super().forward(_boxed(batch, self.cutoff))


class _EquiformerV2Adapter(MLIP):
    """fairchem 1.10 splits EquiformerV2 into a backbone and heads; we compose them.

    Forces come from its vector head (direct). Minus the gradient of its energy is not offered:
    fairchem detaches the edge rotation matrices, so that gradient would be incomplete.
    """

    def __init__(self, backbone, energy_head, force_head, metadata: ModelMetadata,
                 cutoff: float):
        super().__init__()
        self.backbone, self.energy_head, self.force_head = backbone, energy_head, force_head
        self.metadata = metadata
        self.cutoff = cutoff

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        data = _fairchem_graph(batch)
        embedding = self.backbone(data)
        energy = self.energy_head(data, embedding)["energy"].reshape(-1)
        forces = self.force_head(data, embedding)["forces"]
        features = embedding["node_embedding"].embedding[:, 0, :]  # l = 0 channels
        return {"energy": energy, "forces": forces, "node_features": features}


DIMENETPP_FORCES = ("minus the gradient of an energy whose angle terms fairchem detaches "
                    "(distance terms only): not conservative, not a direct head")


def build_dimenetpp(config: DimeNetPPConfig, elements: list[int], statistics: dict) -> MLIP:
    from fairchem.core.models.dimenet_plus_plus import DimeNetPlusPlusWrap

    model = DimeNetPlusPlusWrap(
        use_pbc=True, regress_forces=False, otf_graph=False,
        hidden_channels=config.hidden_channels, num_blocks=config.num_blocks,
        int_emb_size=config.int_emb_size, basis_emb_size=config.basis_emb_size,
        out_emb_channels=config.out_emb_channels, num_spherical=config.num_spherical,
        num_radial=config.num_radial, cutoff=config.cutoff)
    # fairchem's DimeNet++ detaches positions where it computes angles, so minus the gradient
    # of its energy misses the angular terms: forces are not the full gradient (non-conservative)
    return _FairchemAdapter(model, model.output_blocks[-1].lin_up,
                            _metadata("dimenetpp", False, DIMENETPP_FORCES), config.cutoff,
                            gradient_forces=True)


def build_gemnet_oc(config: GemNetOCConfig, elements: list[int], statistics: dict) -> MLIP:
    from fairchem.core.models.gemnet_oc.gemnet_oc import GemNetOC

    options = config.model_dump(exclude={"name", "direct_forces"})
    # otf_graph=False: fairchem itself switches to its own radius graph where an interaction
    # cutoff exceeds 6 A or max_neighbors exceeds 50 (then float32 only: fairchem 1.10's
    # radius_graph_pbc builds float32 tensors); otherwise our graph is subselected.
    model = GemNetOC(num_elements=max(elements) + 1, regress_forces=config.direct_forces,
                     direct_forces=config.direct_forces, use_pbc=True, otf_graph=False,
                     **options)
    return _GemNetOCAdapter(model, model.out_mlp_E, _metadata("gemnet_oc",
                                                             not config.direct_forces),
                            config.cutoff)


def build_equiformer_v2(config: EquiformerV2Config, elements: list[int],
                        statistics: dict) -> MLIP:
    from fairchem.core.models.equiformer_v2.equiformer_v2 import EquiformerV2Backbone
    from fairchem.core.models.equiformer_v2.heads.scalar import EqV2ScalarHead
    from fairchem.core.models.equiformer_v2.heads.vector import EqV2VectorHead

    backbone = EquiformerV2Backbone(
        use_pbc=True, regress_forces=True, otf_graph=False,
        max_neighbors=config.max_neighbors, max_radius=config.cutoff,
        max_num_elements=max(elements) + 1, num_layers=config.num_layers,
        sphere_channels=config.sphere_channels,
        attn_hidden_channels=config.attn_hidden_channels, num_heads=config.num_heads,
        attn_alpha_channels=config.attn_alpha_channels,
        attn_value_channels=config.attn_value_channels,
        ffn_hidden_channels=config.ffn_hidden_channels, lmax_list=[config.lmax],
        mmax_list=[config.mmax], edge_channels=config.edge_channels,
        num_distance_basis=config.num_distance_basis, alpha_drop=0.0, drop_path_rate=0.0,
        # avg_num_nodes is left to fairchem's default (_AVG_NUM_NODES, OC20's 77.81): its
        # energy head divides the summed node energies by it, a constant our scale absorbs
        avg_degree=statistics.get("avg_num_neighbors"))
    return _EquiformerV2Adapter(backbone, EqV2ScalarHead(backbone, "energy"),
                                EqV2VectorHead(backbone, "forces"),
                                _metadata("equiformer_v2", False),
                                config.cutoff)
