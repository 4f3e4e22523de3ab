"""Interlayer sliding as a probe: one block shifted rigidly along a lattice translation.

The block (atoms selected by a z range, ``block_z_min`` to ``block_z_max``, or a tag) moves by
t * translation for t in [0, 1] in ``images`` steps; nothing relaxes. For a translation that
is a lattice vector of the layer the end is the start again, so E(end) - E(start) -- the
**periodicity error** -- is 0 for an exact model and measures how much a model's energy
depends on where the block sits rather than on the structure. Barrier = max_t E(t) - E(0); the
profile error is the mean absolute difference of energies relative to the start.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gmdbench.probes.neb import single_points


class SlidingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    translation: list[float] | None = Field(
        None, description="Cartesian shift (A) of the block over the whole path")
    lattice_translation: list[float] | None = Field(
        None, description="the shift in fractions of the cell vectors, e.g. [0.333, 0, 0]")
    block_tag: int | None = Field(None, description="move the atoms with this tag")
    block_z_min: float | None = Field(None, description="or those with z >= this (A)")
    block_z_max: float | None = Field(None, description="and z <= this (A), with block_z_min")
    images: int = Field(9, ge=2, description="points along the path, ends included")

    @model_validator(mode="after")
    def _one_of_each(self) -> SlidingSettings:
        if (self.translation is None) == (self.lattice_translation is None):
            raise ValueError("give exactly one of translation, lattice_translation")
        if (self.block_tag is None) == (self.block_z_min is None):
            raise ValueError("give exactly one of block_tag, block_z_min")
        if self.block_z_max is not None and self.block_z_min is None:
            raise ValueError("block_z_max needs block_z_min (a z range)")
        return self

    def shift(self, atoms: Atoms) -> np.ndarray:
        if self.translation is not None:
            return np.asarray(self.translation, dtype=float)
        return np.asarray(self.lattice_translation, dtype=float) @ atoms.cell.array

    def block(self, atoms: Atoms) -> np.ndarray:
        if self.block_tag is not None:
            mask = atoms.get_tags() == self.block_tag
        else:
            z = atoms.positions[:, 2]
            upper = np.inf if self.block_z_max is None else self.block_z_max
            mask = (z >= self.block_z_min) & (z <= upper)
        if not mask.any() or mask.all():
            raise ValueError("the sliding block must hold some but not all atoms")
        return mask


class SlidingResult(BaseModel):
    shifts: list[float]
    model_relative: list[float]
    reference_relative: list[float] | None = None
    model_barrier: float
    reference_barrier: float | None = None
    barrier_error: float | None = None
    profile_mae: float | None = None
    periodicity_error: float


def sliding_images(atoms: Atoms, settings: SlidingSettings) -> list[Atoms]:
    mask, shift = settings.block(atoms), settings.shift(atoms)
    images = []
    for t in np.linspace(0.0, 1.0, settings.images):
        image = atoms.copy()
        image.calc = None
        image.positions[mask] += t * shift
        image.info["sliding_shift"] = float(t * np.linalg.norm(shift))
        images.append(image)
    return images


def sliding_probe(images: Sequence[Atoms], calculator: Calculator,
                  reference_energies: Sequence[float] | None = None) -> SlidingResult:
    model = single_points(images, calculator)
    relative = model - model[0]
    shifts = [float(image.info.get("sliding_shift", k)) for k, image in enumerate(images)]
    result = SlidingResult(shifts=shifts, model_relative=relative.tolist(),
                           model_barrier=float(relative.max()),
                           periodicity_error=float(relative[-1]))
    if reference_energies is not None:
        reference = np.asarray(reference_energies, dtype=float)
        reference_relative = reference - reference[0]
        result.reference_relative = reference_relative.tolist()
        result.reference_barrier = float(reference_relative.max())
        result.barrier_error = result.model_barrier - result.reference_barrier
        result.profile_mae = float(np.mean(np.abs(relative - reference_relative)))
    return result
