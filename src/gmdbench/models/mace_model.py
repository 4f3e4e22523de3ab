"""MACE from mace-torch (``mace.modules.MACE``), built directly, not through its CLI.

Our edge convention equals MACE's (sender = centre i, receiver = neighbour j, vector
pos[j] - pos[i] + shift); MACE wants Cartesian shifts and one-hot ``node_attrs`` over the
elements the model covers. MACE's own atomic energies are zero: the Potential adds E0.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from gmdbench.data.graphs import Batch
from gmdbench.models.base import MLIP, ModelMetadata, element_index_table, species_indices


class MACEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["mace"] = "mace"
    r_max: float = Field(5.0, gt=0)
    num_bessel: int = 8
    num_polynomial_cutoff: int = 5
    max_ell: int = 2
    num_interactions: int = 2
    hidden_irreps: str = "32x0e + 32x1o"
    mlp_irreps: str = "16x0e"
    correlation: int = 3
    radial_mlp: list[int] = Field(default_factory=lambda: [32, 32, 32])


class MACEAdapter(MLIP):
    def __init__(self, config: MACEConfig, elements: list[int], avg_num_neighbors: float):
        super().__init__()
        from e3nn import o3
        from mace.modules import MACE, interaction_classes

        self.cutoff = config.r_max
        self.metadata = ModelMetadata(name="mace", library="mace-torch",
                                      library_version=version("mace-torch"), conservative=True)
        self.elements = sorted(int(z) for z in elements)
        self.register_buffer("element_index", element_index_table(self.elements))
        self.model = MACE(
            r_max=config.r_max,
            num_bessel=config.num_bessel,
            num_polynomial_cutoff=config.num_polynomial_cutoff,
            max_ell=config.max_ell,
            interaction_cls=interaction_classes["RealAgnosticResidualInteractionBlock"],
            interaction_cls_first=interaction_classes["RealAgnosticResidualInteractionBlock"],
            num_interactions=config.num_interactions,
            num_elements=len(self.elements),
            hidden_irreps=o3.Irreps(config.hidden_irreps),
            MLP_irreps=o3.Irreps(config.mlp_irreps),
            atomic_energies=np.zeros(len(self.elements)),
            avg_num_neighbors=float(avg_num_neighbors),
            atomic_numbers=self.elements,
            correlation=config.correlation,
            gate=torch.nn.functional.silu,
            radial_MLP=list(config.radial_mlp),
        )

        self.register_buffer("invariant_channels", _invariant_channels(self.model),
                             persistent=False)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        species = species_indices(self.element_index, batch.numbers, "MACE model")
        dtype = batch.positions.dtype
        node_attrs = torch.nn.functional.one_hot(species, len(self.elements)).to(dtype)
        centre = batch.edge_index[0]
        cell_of_edge = batch.cell[batch.batch[centre]]
        shifts = torch.einsum("ek,ekl->el", batch.shifts, cell_of_edge)
        ptr = torch.cat([batch.n_atoms.new_zeros(1), torch.cumsum(batch.n_atoms, 0)])
        data = {
            "positions": batch.positions,
            "node_attrs": node_attrs,
            "edge_index": batch.edge_index,
            "shifts": shifts,
            "unit_shifts": batch.shifts,
            "cell": batch.cell.reshape(-1, 3),
            "batch": batch.batch,
            "ptr": ptr,
        }
        out = self.model(data, training=self.training, compute_force=True)
        return {"energy": out["energy"], "forces": out["forces"],
                "node_features": out["node_feats"][:, self.invariant_channels]}


def _invariant_channels(model: torch.nn.Module) -> torch.Tensor:
    """Indices of the 0e channels in MACE's ``node_feats`` (the interactions' outputs side by
    side). Its 1o (and higher) channels rotate with the molecule, so CKA, projections and the
    model-feature distance must not see them. The same selection as mace's own
    ``extract_invariant`` (what ``MACECalculator.get_descriptors(invariants_only=True)`` uses),
    read from each layer's irreps so that unequal multiplicities per l are handled too."""
    channels, offset = [], 0
    for product in model.products:
        irreps = product.linear.irreps_out
        for mul_ir, part in zip(irreps, irreps.slices(), strict=True):
            if mul_ir.ir.l == 0 and mul_ir.ir.p == 1:
                channels.extend(range(offset + part.start, offset + part.stop))
        offset += irreps.dim
    return torch.tensor(channels, dtype=torch.long)


def build_mace(config: MACEConfig, elements: list[int], statistics: dict) -> MLIP:
    return MACEAdapter(config, elements, statistics.get("avg_num_neighbors", 10.0))
