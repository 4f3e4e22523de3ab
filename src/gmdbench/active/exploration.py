"""Exploration driven by the model: MD with the current ensemble, frames kept by a trust window.

DP-GEN's exploration step (Zhang et al. 2020), on ASE: the ensemble's mean force drives Langevin
MD; every ``sample_every`` steps the frame's model deviation (max over atoms of the norm of the
members' force spread, ``evaluation.uncertainty.atom_force_deviation``) decides its fate:

- below ``low``: the models agree; nothing to learn there, not kept;
- from ``low`` up to ``high``: a candidate, handed on to be labelled by the reference method;
- at or above ``high``: the trajectory has left what the models know (its forces, and so the
  geometries after it, are not to be trusted): the run stops there, the frame not kept.

The deviation is read off the step's own force call (the committee calculator keeps it), so the
classification costs no extra model evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gmdbench.evaluation.uncertainty import atom_force_deviation, ensemble_forces


class TrustWindow(BaseModel):
    """Model-deviation bounds (eV/A, max over atoms) of the frames worth labelling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float = Field(ge=0)
    high: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> TrustWindow:
        if self.high <= self.low:
            raise ValueError(f"trust window high {self.high} must exceed low {self.low}")
        return self


class ExplorationSettings(BaseModel):
    """The MD that explores: Langevin at a temperature, sampled every few steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(2000, ge=1)
    timestep_fs: float = Field(0.5, gt=0)
    temperature_K: float = Field(300.0, gt=0)
    friction_per_fs: float = Field(0.01, gt=0)
    sample_every: int = Field(10, ge=1)
    max_candidates: int = Field(50, ge=1, description="stop once this many are kept")


class CommitteeCalculator(Calculator):
    """The members' mean energy and forces; their per-atom force deviation in ``results``."""

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces"]

    def __init__(self, members: list[Calculator], **kwargs):
        super().__init__(**kwargs)
        if len(members) < 2:
            raise ValueError(f"a committee needs two or more members, got {len(members)}")
        self.members = members

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        forces, energies = [], []
        for member in self.members:
            probe = self.atoms.copy()
            probe.calc = member
            forces.append(probe.get_forces())
            energies.append(probe.get_potential_energy())
        mean, sigma = ensemble_forces(forces)
        energy = float(np.mean(energies))
        self.results = {"energy": energy, "free_energy": energy, "forces": mean,
                        "deviation": atom_force_deviation(sigma)}


@dataclass
class Exploration:
    """What one exploration run saw: the sampled steps' deviations, the kept frames, and why
    it ended ("threshold": the deviation reached ``high``; "candidates": enough were kept;
    "steps": it ran out of steps)."""

    steps_run: int
    stopped_by: str
    sampled: list[tuple[int, float]] = field(default_factory=list)  # (step, deviation)
    candidates: list[Atoms] = field(default_factory=list)  # info: step, deviation


def explore(start: Atoms, members: list[Calculator], window: TrustWindow,
            settings: ExplorationSettings, seed: int) -> Exploration:
    """Run model-driven MD from ``start`` until the deviation reaches ``window.high``, enough
    candidates are kept, or the steps run out (see the module docstring)."""
    atoms = start.copy()
    atoms.calc = CommitteeCalculator(members)
    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, settings.temperature_K, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    dynamics = Langevin(atoms, timestep=settings.timestep_fs * units.fs,
                        temperature_K=settings.temperature_K,
                        friction=settings.friction_per_fs / units.fs, rng=rng)
    result = Exploration(steps_run=0, stopped_by="steps")
    for step in range(settings.steps + 1):
        if step % settings.sample_every == 0:
            atoms.get_forces()  # the current geometry's committee call (cached if done)
            deviation = float(np.max(atoms.calc.results["deviation"]))
            result.sampled.append((step, deviation))
            if deviation >= window.high:
                result.stopped_by = "threshold"
                break
            if deviation >= window.low:
                frame = Atoms(atoms.numbers, atoms.get_positions())
                frame.info.update(step=step, deviation=deviation)
                result.candidates.append(frame)
                if len(result.candidates) >= settings.max_candidates:
                    result.stopped_by = "candidates"
                    break
        if step == settings.steps:
            break
        dynamics.run(1)
        result.steps_run = step + 1
    return result
