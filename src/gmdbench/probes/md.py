"""MD stability probe: NVT Langevin with the model, watched for explosion.

A model that is accurate near equilibrium can still blow up in MD when thermal motion takes
atoms where it extrapolates. The run records temperature, potential energy, pressure (when the
calculator gives stress) and the smallest interatomic distance every ``interval`` steps, and
stops as **exploded** when that distance falls below ``distance_floor``, the temperature
exceeds ``explode_temperature_factor`` x target, or the model returns non-finite numbers. The
radial distribution function is averaged over the second half of the recorded snapshots.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, PropertyNotImplementedError
from pydantic import BaseModel, ConfigDict, Field


class MDSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature_K: float = Field(600.0, gt=0)
    timestep_fs: float = Field(2.0, gt=0)
    steps: int = Field(500, ge=1)
    friction_per_fs: float = Field(0.01, gt=0)
    interval: int = Field(10, ge=1, description="steps between recorded snapshots")
    distance_floor: float = Field(0.5, gt=0, description="A")
    explode_temperature_factor: float = Field(5.0, gt=1)
    rdf_rmax: float = Field(5.0, gt=0, description="A; must fit in the cell")
    rdf_bins: int = Field(100, ge=10)
    seed: int = 0


class MDResult(BaseModel):
    exploded: bool
    explosion: str | None = None
    steps_completed: int
    time_ps: list[float]
    temperature_K: list[float]
    potential_energy: list[float]
    pressure_GPa: list[float] | None = None
    pressure_drift_GPa_per_ps: float | None = None
    mean_temperature_K: float | None = None
    min_distance: float
    rdf_r: list[float] | None = None
    rdf: list[float] | None = None


def _min_distance(atoms: Atoms, cutoff: float = 3.0) -> float:
    from ase.neighborlist import neighbor_list

    distances = neighbor_list("d", atoms, cutoff)
    return float(distances.min()) if distances.size else cutoff


def _pressure(atoms: Atoms) -> float | None:
    try:
        stress = atoms.get_stress(voigt=True)
    except (PropertyNotImplementedError, NotImplementedError):
        return None
    return float(-np.mean(stress[:3]) / units.GPa)


def md_stability(atoms: Atoms, calculator: Calculator, settings: MDSettings) -> MDResult:
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import (
        MaxwellBoltzmannDistribution,
        Stationary,
        ZeroRotation,
    )

    system = atoms.copy()
    system.calc = calculator
    rng = np.random.default_rng(settings.seed)
    MaxwellBoltzmannDistribution(system, temperature_K=settings.temperature_K, rng=rng)
    Stationary(system)
    if not system.pbc.any():
        ZeroRotation(system)
    from ase.constraints import FixCom

    system.set_constraint(FixCom())  # ASE 3.28+: fixcm in Langevin is deprecated
    dynamics = Langevin(system, timestep=settings.timestep_fs * units.fs,
                        temperature_K=settings.temperature_K,
                        friction=settings.friction_per_fs / units.fs, fixcm=False, rng=rng)
    record: dict[str, list] = {"time": [], "temperature": [], "energy": [], "pressure": [],
                               "snapshots": []}
    explosion = None
    closest = np.inf
    steps_done = 0
    while steps_done < settings.steps:
        chunk = min(settings.interval, settings.steps - steps_done)
        try:
            dynamics.run(chunk)
        except (ValueError, FloatingPointError, RuntimeError) as error:
            explosion = f"model failed: {error}"
            break
        steps_done += chunk
        energy = float(system.get_potential_energy())
        temperature = float(system.get_temperature())
        distance = _min_distance(system)
        closest = min(closest, distance)
        record["time"].append(steps_done * settings.timestep_fs / 1000.0)
        record["temperature"].append(temperature)
        record["energy"].append(energy)
        record["pressure"].append(_pressure(system))
        record["snapshots"].append(system.copy())
        if not (np.isfinite(energy) and np.all(np.isfinite(system.get_forces()))):
            explosion = "non-finite energy or forces"
        elif distance < settings.distance_floor:
            explosion = f"interatomic distance {distance:.2f} A < {settings.distance_floor}"
        elif temperature > settings.explode_temperature_factor * settings.temperature_K:
            explosion = (f"temperature {temperature:.0f} K > "
                         f"{settings.explode_temperature_factor} x target")
        if explosion:
            break
    pressures = record["pressure"]
    has_pressure = bool(pressures) and all(p is not None for p in pressures)
    result = MDResult(
        exploded=explosion is not None, explosion=explosion, steps_completed=steps_done,
        time_ps=record["time"], temperature_K=record["temperature"],
        potential_energy=record["energy"],
        pressure_GPa=pressures if has_pressure else None,
        mean_temperature_K=float(np.mean(record["temperature"])) if record["temperature"]
        else None, min_distance=float(closest))
    if has_pressure and len(pressures) > 1:
        result.pressure_drift_GPa_per_ps = float(np.polyfit(record["time"], pressures, 1)[0])
    if explosion is None and system.pbc.all() and record["snapshots"]:
        result.rdf_r, result.rdf = _mean_rdf(record["snapshots"][len(record["snapshots"]) // 2:],
                                             settings)
    return result


def _mean_rdf(snapshots: list[Atoms], settings: MDSettings) -> tuple[list[float], list[float]]:
    from ase.geometry.rdf import get_rdf

    cell = snapshots[0].cell.array
    volume = abs(np.linalg.det(cell))
    widths = [volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
              for k in range(3)]  # distances between opposite faces: what ASE's RDF checks
    rmax = min(settings.rdf_rmax, 0.49 * min(widths))
    curves = [get_rdf(atoms, rmax, settings.rdf_bins) for atoms in snapshots]
    return curves[0][1].tolist(), np.mean([c[0] for c in curves], axis=0).tolist()
