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
from gmdbench.models.base import MLIP, ModelMetadata, conservative_forces


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
                 metadata: ModelMetadata, cutoff: float):
        super().__init__()
        self.model = model
        self.metadata = metadata
        self.cutoff = cutoff
        self._features: torch.Tensor | None = None
        feature_module.register_forward_hook(self._keep_features)

    def _keep_features(self, module, inputs, output) -> None:
        self._features = inputs[0]

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = self.model(_fairchem_graph(batch))
        energy = out["energy"].reshape(-1)
        if self.metadata.conservative:
            forces = conservative_forces(energy, batch.positions, self.training)
        else:
            forces = out["forces"]
        return {"energy": energy, "forces": forces, "node_features": self._features}


def _metadata(name: str, conservative: bool) -> ModelMetadata:
    return ModelMetadata(name=name, library="fairchem-core",
                         library_version=version("fairchem-core"), conservative=conservative)


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
