"""NequIP from nequip 0.19 (``nequip.model.NequIPGNNModel``, e3nn 0.6), built directly.

NequIP's edge convention equals ours (``edge_index[0]`` the centre, vector
pos[j] - pos[i] + shift @ cell). Its per-type energy shifts are zero and scales one: the
Potential adds E0 and the scale. ``nequip.utils.global_state.set_global_state`` must run before
a NequIP model is built; it also sets torch's default dtype to float64, which we restore.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Literal

import torch
from ase.data import chemical_symbols
from pydantic import BaseModel, ConfigDict, Field

from gmdbench.data.graphs import Batch
from gmdbench.models.base import MLIP, ModelMetadata, element_index_table, species_indices


class NequIPConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["nequip"] = "nequip"
    r_max: float = Field(5.0, gt=0)
    num_layers: int = 3
    l_max: int = 1
    parity: bool = True
    num_features: int = 16
    radial_mlp_depth: int = 1
    radial_mlp_width: int = 32
    num_bessels: int = 8


class NequIPAdapter(MLIP):
    def __init__(self, config: NequIPConfig, elements: list[int], avg_num_neighbors: float,
                 seed: int):
        super().__init__()
        from nequip.model import NequIPGNNModel
        from nequip.utils.global_state import set_global_state

        previous = torch.get_default_dtype()
        set_global_state()
        torch.set_default_dtype(previous)
        self.cutoff = config.r_max
        self.metadata = ModelMetadata(name="nequip", library="nequip",
                                      library_version=version("nequip"), conservative=True)
        self.elements = sorted(int(z) for z in elements)
        names = [chemical_symbols[z] for z in self.elements]
        self.register_buffer("type_index", element_index_table(self.elements))
        dtype = "float64" if previous == torch.float64 else "float32"
        self.model = NequIPGNNModel(
            seed=seed, model_dtype=dtype, r_max=config.r_max, type_names=names,
            num_layers=config.num_layers, l_max=config.l_max, parity=config.parity,
            num_features=config.num_features, radial_mlp_depth=config.radial_mlp_depth,
            radial_mlp_width=config.radial_mlp_width, num_bessels=config.num_bessels,
            avg_num_neighbors=float(avg_num_neighbors),
            per_type_energy_shifts=dict.fromkeys(names, 0.0),
            per_type_energy_scales=dict.fromkeys(names, 1.0))

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        types = species_indices(self.type_index, batch.numbers, "NequIP model")
        out = self.model({
            "pos": batch.positions, "edge_index": batch.edge_index, "atom_types": types,
            "batch": batch.batch, "num_atoms": batch.n_atoms, "edge_cell_shift": batch.shifts,
            "cell": batch.cell,
        })
        return {"energy": out["total_energy"].reshape(-1), "forces": out["forces"],
                "node_features": out["node_features"]}


def build_nequip(config: NequIPConfig, elements: list[int], statistics: dict) -> MLIP:
    return NequIPAdapter(config, elements, statistics.get("avg_num_neighbors", 10.0),
                         seed=int(torch.initial_seed() % (2**31)))
