"""Kinetic temperature of MD frames, as ASE computes it for atoms under ``FixCom``.

Every MD frame is integrated with ASE's ``FixCom`` (the centre of mass does not move), which
removes 3 of the 3N degrees of freedom; rotation is not constrained (the Langevin noise excites
it). ASE's ``Atoms.get_temperature`` counts degrees of freedom from the constraints, so these
helpers attach ``FixCom`` and let ASE do the arithmetic.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.constraints import FixCom
from ase.md.velocitydistribution import force_temperature


def kinetic_temperature(momenta: np.ndarray, numbers: np.ndarray) -> float:
    """Temperature (K) of one frame of N atoms whose centre of mass is fixed."""
    atoms = Atoms(numbers=numbers, momenta=momenta)
    atoms.set_constraint(FixCom())
    return float(atoms.get_temperature())


def set_temperature(atoms: Atoms, temperature_K: float) -> None:
    """Scale ``atoms``' momenta to exactly ``temperature_K`` over 3N - 3 degrees of freedom
    (ASE's ``force_temperature`` with the ``FixCom`` the MD will run under)."""
    constraints = atoms.constraints
    atoms.set_constraint(FixCom())
    force_temperature(atoms, temperature_K)
    atoms.set_constraint(constraints)
