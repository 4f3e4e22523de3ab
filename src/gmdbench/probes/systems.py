"""Small systems whose reference gmd-bench computes itself, for the self-contained probe suite.

- a vacancy in an fcc metal (EMT): a nearest-neighbour hop into the vacancy (the kind of motion
  thermal training frames sample: interpolation) and a second-neighbour hop along the straight
  line through the face of the cell (it squeezes the atom between two neighbours, closer than
  any training frame goes: extrapolation);
- an AB-stacked graphene bilayer (GFN1-xTB), whose top layer slides along a lattice vector.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk, graphene


def fcc_vacancy(symbol: str = "Cu", repeat: int = 2, a: float | None = None) -> Atoms:
    """A cubic fcc supercell (4 repeat^3 sites) with atom 0 removed (the vacancy at the origin)."""
    atoms = bulk(symbol, "fcc", a=a, cubic=True).repeat(repeat)
    del atoms[0]
    return atoms


def _vacancy_hop(atoms: Atoms, neighbour_distance: float) -> tuple[Atoms, Atoms]:
    """Endpoints of a hop of the atom at ``neighbour_distance`` from the vacancy into it."""
    from ase.geometry import find_mic

    # vectors from the vacancy site (the origin) with the minimum-image convention
    vectors, lengths = find_mic(atoms.positions, atoms.cell, pbc=True)
    candidates = np.flatnonzero(np.isclose(lengths, neighbour_distance, atol=0.05))
    if candidates.size == 0:
        raise ValueError(f"no atom at {neighbour_distance:.2f} A from the vacancy")
    mover = int(candidates[np.lexsort(vectors[candidates].T[::-1])][-1])
    initial = atoms.copy()
    final = atoms.copy()
    final.positions[mover] = atoms.positions[mover] - vectors[mover]  # into the vacancy site
    final.wrap()
    initial.info["mover"] = final.info["mover"] = mover
    return initial, final


def nearest_neighbour_hop(atoms: Atoms) -> tuple[Atoms, Atoms]:
    return _vacancy_hop(atoms, _lattice_constant(atoms) / np.sqrt(2))


def second_neighbour_hop(atoms: Atoms) -> tuple[Atoms, Atoms]:
    return _vacancy_hop(atoms, _lattice_constant(atoms))


def _lattice_constant(atoms: Atoms) -> float:
    """The cubic fcc lattice constant, from the nearest-neighbour distance of the sites."""
    distances = atoms.get_all_distances(mic=True)
    nearest = float(np.min(distances[distances > 0.1]))
    return nearest * np.sqrt(2)


def graphene_bilayer(repeat: int = 3, vacuum: float = 8.0, spacing: float = 3.35) -> Atoms:
    """AB (Bernal) bilayer graphene, repeat x repeat in-plane; the top layer carries tag 1."""
    layer = graphene(formula="C2", a=2.46, size=(repeat, repeat, 1), vacuum=None)
    layer.cell[2] = [0.0, 0.0, 2 * vacuum + spacing]
    layer.pbc = True
    bottom = layer.copy()
    bottom.positions[:, 2] = vacuum
    top = layer.copy()
    top.positions[:, 2] = vacuum + spacing
    # AB stacking: shift the top layer by one carbon-carbon bond along the armchair direction
    top.positions += (layer.cell[0] / repeat + layer.cell[1] / repeat) / 3.0
    top.set_tags(1)
    bottom.set_tags(0)
    bilayer = bottom + top
    bilayer.wrap()
    return bilayer
