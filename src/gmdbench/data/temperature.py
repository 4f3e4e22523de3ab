"""Kinetic temperature of stored MD frames, from their momenta.

Every MD frame is integrated with ASE's ``FixCom`` (the centre of mass does not move), which
removes 3 of the 3N degrees of freedom; rotation is not constrained (the Langevin noise excites
it), so T = 2 KE / ((3N - 3) k_B), as ASE's ``Atoms.get_temperature`` computes it for an atoms
object carrying that constraint.
"""

from __future__ import annotations

import numpy as np
from ase import units
from ase.data import atomic_masses

FIXED_COM_DOF = 3


def kinetic_temperature(momenta: np.ndarray, numbers: np.ndarray) -> float:
    """Temperature (K) of one frame of N atoms whose centre of mass is fixed."""
    masses = atomic_masses[np.asarray(numbers)]
    kinetic = 0.5 * float(np.sum(np.sum(np.asarray(momenta) ** 2, axis=1) / masses))
    dof = 3 * len(masses) - FIXED_COM_DOF
    return 2.0 * kinetic / (dof * units.kB)
