"""Any trained model as an ASE Calculator, so it can run MD, relaxations and NEB."""

from __future__ import annotations

from typing import ClassVar

import torch
from ase.calculators.calculator import Calculator, all_changes

from gmdbench.data.graphs import batch_from_atoms
from gmdbench.models.base import Potential, default_dtype


class MLIPCalculator(Calculator):
    """Energy (eV) and forces (eV/A) of a :class:`Potential`; ``dtype`` float32 or float64."""

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces"]

    def __init__(self, potential: Potential, dtype: torch.dtype = torch.float32, **kwargs):
        super().__init__(**kwargs)
        self.dtype = dtype
        self.potential = potential.to(dtype)
        self.potential.eval()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        device = next(self.potential.buffers()).device  # wherever the model was put
        with default_dtype(self.dtype):  # some library code allocates in the default dtype
            batch = batch_from_atoms([self.atoms], self.potential.cutoff, dtype=self.dtype)
            out = self.potential(batch.to(device=device))
        energy = float(out["energy"].detach()[0])
        self.results = {"energy": energy, "free_energy": energy,
                        "forces": out["forces"].detach().to(torch.float64).cpu().numpy()}
