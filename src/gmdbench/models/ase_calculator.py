"""Bring your own model: any ASE calculator, given as ``package.module:factory``, zero-shot.

The calculator is called once per structure (ASE calculators take one Atoms at a time), so
this adapter is for evaluation, not training: its regimes are zero-shot and zero-shot-refit.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from gmdbench.data.graphs import Batch
from gmdbench.dotted import resolve_dotted
from gmdbench.errors import GmdError, UnsupportedElementError
from gmdbench.models.base import MLIP, ModelMetadata


class ASECalculatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["ase-calculator"] = "ase-calculator"
    factory: str = Field("ase.calculators.emt:EMT", description="package.module:factory")
    options: dict[str, Any] = Field(default_factory=dict)
    cutoff: float = Field(5.0, description="only for the batch graph; the calculator's own "
                          "neighbour handling is what counts")


def load_factory(spec: str):
    return resolve_dotted(spec, "ASE calculator factory")


class ASECalculatorAdapter(MLIP):
    def __init__(self, config: ASECalculatorConfig):
        super().__init__()
        self.calculator = load_factory(config.factory)(**config.options)
        self.cutoff = config.cutoff
        self.metadata = ModelMetadata(
            name="ase-calculator", library=config.factory.partition(":")[0].split(".")[0],
            library_version="-", conservative=bool(getattr(self.calculator, "conservative",
                                                           True)),
            pretrained=True, level_of_theory=str(getattr(self.calculator, "level_of_theory",
                                                         config.factory)))

    def head_parameters(self) -> list[torch.nn.Parameter]:
        raise GmdError("an ASE calculator has no weights to fine-tune")

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        from ase import Atoms

        energies, forces = [], []
        # an ASE calculator runs on the host: one copy there, results copied back once
        ptr = np.concatenate([[0], np.cumsum(batch.n_atoms.cpu().numpy())])
        positions = batch.positions.detach().to(torch.float64).cpu().numpy()
        numbers = batch.numbers.cpu().numpy()
        cells, pbcs = batch.cell.detach().cpu().numpy(), batch.pbc.cpu().numpy()
        for k in range(batch.n_structures):
            atoms = Atoms(numbers=numbers[ptr[k]:ptr[k + 1]],
                          positions=positions[ptr[k]:ptr[k + 1]],
                          cell=cells[k], pbc=pbcs[k])
            atoms.calc = self.calculator
            energies.append(atoms.get_potential_energy())
            forces.append(atoms.get_forces())
        dtype = batch.positions.dtype
        device = batch.positions.device
        return {"energy": torch.tensor(energies, dtype=torch.float64, device=device),
                "forces": torch.as_tensor(np.concatenate(forces), dtype=dtype, device=device),
                "node_features": torch.zeros((batch.positions.shape[0], 0), dtype=dtype,
                                             device=device)}


def build_ase_calculator(config: ASECalculatorConfig, elements: list[int],
                         statistics: dict) -> MLIP:
    adapter = ASECalculatorAdapter(config)
    supported = getattr(adapter.calculator, "supported_elements", None)
    if supported is not None:
        from ase.data import chemical_symbols

        missing = sorted({chemical_symbols[z] for z in elements} - set(supported))
        if missing:
            raise UnsupportedElementError(
                f"ASE calculator {config.factory} cannot treat {', '.join(missing)}")
    return adapter
