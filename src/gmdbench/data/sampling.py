"""Samplers that move a molecule and label the geometries they visit with a reference method.

Langevin MD is cut into *segments*, one per saved frame. A segment starts from the state of a
saved frame (positions, momenta, label) and uses a random stream seeded by (trajectory seed,
frame index); the last force call of a segment is made by a fresh calculator, so the saved label
depends on the geometry alone. Hence a build resumed from its last stored frame continues the
trajectory bit for bit as if it had never stopped, and each saved frame costs exactly
``stride`` reference calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import CalculationFailed, Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

from gmdbench.config import SamplerConfig
from gmdbench.data.temperature import set_temperature
from gmdbench.errors import LabelError
from gmdbench.reference.registry import ReferenceMethod, check_finite, label_with_retries


@dataclass
class Frame:
    """A labelled geometry and the dynamical state needed to continue from it."""

    positions: np.ndarray
    momenta: np.ndarray | None
    energy: float
    forces: np.ndarray


class ReferenceCalculator(Calculator):
    """Drives MD with a reference method: retries failed calls, refuses non-finite output.

    It wraps the method's own calculator (an ASE pattern, like SumCalculator) so that the
    integrator sees one calculator while the wrapper can swap in a fresh inner one.
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "forces"]

    def __init__(self, method: ReferenceMethod):
        super().__init__()
        self.method = method
        self._inner: Calculator | None = None

    def refresh(self) -> None:
        """Drop the inner calculator: the next call starts from nothing (no SCF guess)."""
        self._inner = None
        self.reset()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        plain = self.atoms.copy()
        plain.set_constraint()
        if self._inner is not None:
            plain.calc = self._inner
            try:
                energy = float(plain.get_potential_energy())
                forces = np.array(plain.get_forces(), dtype=float)
                check_finite(energy, forces)
            # an SCF failure or non-finite output of the warm calculator falls through to
            # label_with_retries below (fresh calculators, every attempt's reason recorded);
            # any other exception is a bug and propagates
            except (CalculationFailed, LabelError):
                self._inner = None
            else:
                self.results = {"energy": energy, "forces": forces}
                return
        energy, forces = label_with_retries(plain, self.method, copy=False)
        self._inner = self.method.make_calculator(self.method.atoms_options(plain))
        self.results = {"energy": energy, "forces": forces}


def _md_forces(atoms: Atoms, forces: np.ndarray) -> np.ndarray:
    """Forces as the integrator sees them (constraints applied), from raw label forces."""
    probe = atoms.copy()
    probe.calc = SinglePointCalculator(probe, energy=0.0, forces=forces.copy())
    return probe.get_forces(md=True)


def initial_md_frame(
    conformer: Atoms, method: ReferenceMethod, config: SamplerConfig, seed: int
) -> Frame:
    """The conformer with Maxwell-Boltzmann momenta (no net translation or rotation), labelled.

    Momenta are drawn at ``initial_temperature_factor`` x the target and scaled to exactly that
    kinetic temperature (3N - 3 degrees of freedom, as under FixCom): starting at an energy
    minimum, equipartition moves about half of it into the potential, so the trajectory settles
    near the target instead of near half of it; the exact scaling removes the large
    kinetic-energy noise of an 8-atom molecule's first draw.
    """
    atoms = conformer.copy()
    start = config.temperature_K * config.initial_temperature_factor
    thermalize_momenta(atoms, start, rng=np.random.default_rng([seed, 0]))
    Stationary(atoms)
    ZeroRotation(atoms)
    set_temperature(atoms, start)
    energy, forces = label_with_retries(atoms, method)
    return Frame(atoms.get_positions(), atoms.get_momenta(), energy, forces)


def langevin_segment(
    template: Atoms,
    start: Frame,
    n_steps: int,
    method: ReferenceMethod,
    config: SamplerConfig,
    seed: int,
    segment_index: int,
) -> Frame:
    """Advance ``n_steps`` of Langevin MD from ``start``; label the end geometry afresh."""
    if n_steps == 0:
        return start
    atoms = template.copy()
    atoms.set_positions(start.positions)
    atoms.set_momenta(start.momenta)
    atoms.set_constraint(FixCom())
    calc = ReferenceCalculator(method)
    atoms.calc = calc
    dynamics = Langevin(
        atoms,
        timestep=config.timestep_fs * units.fs,
        temperature_K=config.temperature_K,
        friction=config.friction_per_fs / units.fs,
        fixcm=False,
        rng=np.random.default_rng([seed, segment_index + 1]),
    )
    forces = _md_forces(atoms, start.forces)
    for step in range(n_steps):
        if step == n_steps - 1:
            calc.refresh()
        forces = dynamics.step(forces)
    energy = float(calc.results["energy"])
    raw_forces = np.array(calc.results["forces"], dtype=float)
    return Frame(atoms.get_positions(), atoms.get_momenta(), energy, raw_forces)


def rattled_frame(
    conformer: Atoms, method: ReferenceMethod, config: SamplerConfig, seed: int, index: int
) -> Frame:
    """The conformer displaced by isotropic Gaussian noise of ``rattle_stdev`` A."""
    rng = np.random.default_rng([seed, index + 1])
    atoms = conformer.copy()
    atoms.positions += rng.normal(0.0, config.rattle_stdev, size=atoms.positions.shape)
    energy, forces = label_with_retries(atoms, method)
    return Frame(atoms.get_positions(), None, energy, forces)


def harmonic_modes(
    conformer: Atoms, method: ReferenceMethod, delta: float = 0.005
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference-optimised geometry, mass-weighted eigenvalues and eigenvectors of its Hessian.

    The Hessian is built by central differences of forces, each from a fresh calculator, so the
    modes (and the frames sampled from them) are the same in every process.
    """
    from ase.optimize import BFGS

    atoms = conformer.copy()
    atoms.calc = ReferenceCalculator(method)
    BFGS(atoms, logfile=None).run(fmax=0.01, steps=200)
    minimum = atoms.get_positions()
    n = len(atoms)
    hessian = np.zeros((3 * n, 3 * n))
    probe = conformer.copy()
    for column in range(3 * n):
        displaced = []
        for sign in (+1.0, -1.0):
            probe.positions = minimum.copy()
            probe.positions[column // 3, column % 3] += sign * delta
            displaced.append(label_with_retries(probe, method)[1].ravel())
        hessian[:, column] = -(displaced[0] - displaced[1]) / (2 * delta)
    hessian = 0.5 * (hessian + hessian.T)
    inv_sqrt_mass = np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3)
    eigenvalues, eigenvectors = np.linalg.eigh(hessian * np.outer(inv_sqrt_mass, inv_sqrt_mass))
    return minimum, eigenvalues, eigenvectors


def normal_mode_frame(
    conformer: Atoms,
    modes: tuple[np.ndarray, np.ndarray, np.ndarray],
    method: ReferenceMethod,
    config: SamplerConfig,
    seed: int,
    index: int,
) -> Frame:
    """A classical harmonic Boltzmann sample at ``temperature_K`` around the reference minimum.

    Each vibrational mode (eigenvalue above ``min_mode_eigenvalue``; translations and rotations
    excluded) gets a Gaussian mass-weighted amplitude of variance kT / lambda.
    """
    minimum, eigenvalues, eigenvectors = modes
    rng = np.random.default_rng([seed, index + 1])
    vibrational = eigenvalues > config.min_mode_eigenvalue
    kt = units.kB * config.temperature_K
    amplitudes = rng.normal(0.0, 1.0, size=int(vibrational.sum())) * np.sqrt(
        kt / eigenvalues[vibrational]
    )
    mass_weighted = eigenvectors[:, vibrational] @ amplitudes
    inv_sqrt_mass = np.repeat(1.0 / np.sqrt(conformer.get_masses()), 3)
    atoms = conformer.copy()
    atoms.positions = minimum + (mass_weighted * inv_sqrt_mass).reshape(-1, 3)
    energy, forces = label_with_retries(atoms, method)
    return Frame(atoms.get_positions(), None, energy, forces)
