"""PySCF energies and analytic gradients behind the ASE Calculator interface.

Lets DFT (or HF) label frames through the same path as xTB, so a dataset can be rebuilt at a
higher level of theory by changing one name: ``pyscf:<functional>/<basis>``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from ase.calculators.calculator import CalculationFailed, Calculator, all_changes
from ase.units import Bohr, Hartree


class PySCFCalculator(Calculator):
    """Molecular (non-periodic) Kohn-Sham or Hartree-Fock single points with PySCF."""

    implemented_properties: ClassVar[list[str]] = ["energy", "forces"]
    default_parameters: ClassVar[dict[str, Any]] = {
        "xc": "pbe",
        "basis": "def2-svp",
        "charge": 0,
        "spin": 0,
        "max_cycle": 100,
        "conv_tol": 1e-9,
    }

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from pyscf import dft, gto, scf

        super().calculate(atoms, properties, system_changes)
        if self.atoms.pbc.any():
            raise CalculationFailed("the PySCF reference here treats molecules only (pbc=False)")
        p = self.parameters
        mol = gto.M(
            atom=[(s, tuple(r)) for s, r in zip(self.atoms.get_chemical_symbols(),
                                               self.atoms.positions, strict=True)],
            basis=p.basis,
            charge=int(p.charge),
            spin=int(p.spin),
            unit="Angstrom",
            verbose=0,
        )
        restricted = int(p.spin) == 0
        if str(p.xc).lower() == "hf":
            mf = scf.RHF(mol) if restricted else scf.UHF(mol)
        else:
            mf = dft.RKS(mol) if restricted else dft.UKS(mol)
            mf.xc = p.xc
        mf.max_cycle = int(p.max_cycle)
        mf.conv_tol = float(p.conv_tol)
        energy = mf.kernel()
        if not mf.converged:
            raise CalculationFailed(f"PySCF SCF not converged in {p.max_cycle} cycles")
        gradient = mf.nuc_grad_method().kernel()
        self.results["energy"] = float(energy) * Hartree
        self.results["forces"] = -np.asarray(gradient) * Hartree / Bohr
