"""Migration paths as probes: fixed-path single points and self-consistent NEB.

*Fixed path*: the reference's NEB images (endpoints included) get single points from the model,
all with one calculator; the barrier is max_i E_i - E_0 on both sides, the error per path is the
model's barrier minus the reference's, and the profile error the mean absolute difference of
energies relative to image 0. No geometry moves, so the probe isolates energy errors.

*Self-consistent NEB*: ASE's NEB with a climbing image between the reference endpoints (IDPP
interpolation, FIRE or BFGS to fmax), driven by the model. Models that extrapolate badly can
drive images into unphysical regions: the run stops as **exploded** when the largest image
force exceeds ``explode_fmax``, an image energy changes by more than ``explode_energy_jump``
between two steps, an interatomic distance falls below ``distance_floor``, or the model returns
non-finite numbers. Where a reference calculator exists the model's final path is rescored
with it, so a low model barrier on a wrong path shows up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import BaseModel, ConfigDict, Field

CalculatorFactory = Callable[[], Calculator]


class FixedPathResult(BaseModel):
    path: str
    path_class: str | None
    reference_relative: list[float]
    model_relative: list[float]
    reference_barrier: float
    model_barrier: float
    barrier_error: float
    profile_mae: float


def single_points(images: Sequence[Atoms], calculator: Calculator) -> np.ndarray:
    """Energies of every image with one calculator (copies: the images keep their own state)."""
    energies = []
    for image in images:
        atoms = image.copy()
        atoms.calc = calculator
        energies.append(float(atoms.get_potential_energy()))
    return np.array(energies)


def barrier(relative: np.ndarray) -> float:
    return float(np.max(relative))


def fixed_path(images: Sequence[Atoms], reference_energies: Sequence[float],
               calculator: Calculator, name: str, path_class: str | None = None
               ) -> FixedPathResult:
    reference = np.asarray(reference_energies, dtype=float)
    if len(reference) != len(images):
        raise ValueError(f"path {name}: {len(images)} images but {len(reference)} energies")
    model = single_points(images, calculator)
    reference_relative, model_relative = reference - reference[0], model - model[0]
    return FixedPathResult(
        path=name, path_class=path_class, reference_relative=reference_relative.tolist(),
        model_relative=model_relative.tolist(), reference_barrier=barrier(reference_relative),
        model_barrier=barrier(model_relative),
        barrier_error=barrier(model_relative) - barrier(reference_relative),
        profile_mae=float(np.mean(np.abs(model_relative - reference_relative))))


def errors_by_class(results: Sequence[FixedPathResult]) -> dict[str, dict[str, float]]:
    """Barrier error mean +- std (and mean absolute) per path class; unlabelled paths apart."""
    by_class: dict[str, list[float]] = {}
    for result in results:
        by_class.setdefault(result.path_class or "unlabelled", []).append(result.barrier_error)
    return {name: {"paths": len(errors), "barrier_error_mean": float(np.mean(errors)),
                   "barrier_error_std": float(np.std(errors, ddof=1)) if len(errors) > 1
                   else 0.0, "barrier_abs_error_mean": float(np.mean(np.abs(errors)))}
            for name, errors in sorted(by_class.items())}


class NEBSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    images: int = Field(5, ge=1, description="intermediate images")
    climb: bool = True
    interpolation: Literal["idpp", "linear"] = "idpp"
    optimizer: Literal["FIRE", "BFGS"] = "FIRE"
    fmax: float = Field(0.05, gt=0, description="eV/A, convergence")
    max_steps: int = Field(300, ge=1, description="step cap")
    max_displacement: float = Field(0.1, gt=0, description="A, the optimizer's maxstep")
    explode_fmax: float = Field(50.0, gt=0, description="eV/A")
    explode_energy_jump: float = Field(10.0, gt=0, description="eV between two steps")
    distance_floor: float = Field(0.5, gt=0, description="A, smallest allowed distance")


class NEBResult(BaseModel):
    converged: bool
    exploded: bool
    explosion: str | None = None
    steps: int
    fmax_final: float | None
    model_relative: list[float] | None
    model_barrier: float | None
    reference_barrier: float | None = None
    rescored_relative: list[float] | None = None
    rescored_barrier: float | None = None
    min_distance: float | None = None


class _Exploded(Exception):
    pass


def _min_distance(atoms: Atoms) -> float:
    from ase.neighborlist import neighbor_list

    distances = neighbor_list("d", atoms, 2.0)
    return float(distances.min()) if distances.size else 2.0


def _band(initial: Atoms, final: Atoms, calculator: CalculatorFactory, settings: NEBSettings):
    """Images (each with its own calculator) interpolated between the endpoints, and the NEB."""
    from ase.mep import NEB

    images = [initial.copy()] + [initial.copy() for _ in range(settings.images)] \
        + [final.copy()]
    for image in images:
        image.calc = calculator()
    neb = NEB(images, climb=settings.climb, method="improvedtangent")
    neb.interpolate(method=settings.interpolation, mic=True)
    return images, neb


def self_consistent_neb(initial: Atoms, final: Atoms, model: CalculatorFactory,
                        settings: NEBSettings, reference: CalculatorFactory | None = None,
                        reference_barrier: float | None = None) -> NEBResult:
    from ase.optimize import BFGS, FIRE

    images, neb = _band(initial, final, model, settings)
    optimizer_class = FIRE if settings.optimizer == "FIRE" else BFGS
    optimizer = optimizer_class(neb, maxstep=settings.max_displacement, logfile=None)
    state: dict = {"energies": None, "min_distance": np.inf, "fmax": None}

    def watch() -> None:
        energies = np.array([image.get_potential_energy() for image in images])
        forces = [image.get_forces() for image in images[1:-1]]
        if not (np.all(np.isfinite(energies)) and all(np.all(np.isfinite(f)) for f in forces)):
            raise _Exploded("non-finite energy or forces")
        fmax = max(float(np.sqrt((f**2).sum(axis=1)).max()) for f in forces)
        state["fmax"] = fmax
        if fmax > settings.explode_fmax:
            raise _Exploded(f"image force {fmax:.1f} eV/A > {settings.explode_fmax}")
        if state["energies"] is not None:
            jump = float(np.max(np.abs(energies - state["energies"])))
            if jump > settings.explode_energy_jump:
                raise _Exploded(f"image energy jumped {jump:.1f} eV in one step "
                                f"(> {settings.explode_energy_jump})")
        state["energies"] = energies
        closest = min(_min_distance(image) for image in images[1:-1])
        state["min_distance"] = min(state["min_distance"], closest)
        if closest < settings.distance_floor:
            raise _Exploded(f"interatomic distance {closest:.2f} A < {settings.distance_floor}")

    optimizer.attach(watch, interval=1)
    explosion = None
    converged = False
    try:
        converged = bool(optimizer.run(fmax=settings.fmax, steps=settings.max_steps))
    except _Exploded as error:
        explosion = str(error)
    except (ValueError, FloatingPointError, RuntimeError) as error:  # a model failing outright
        explosion = f"model failed: {error}"
    steps = int(optimizer.nsteps)
    if explosion is not None:
        return NEBResult(converged=False, exploded=True, explosion=explosion, steps=steps,
                         fmax_final=state["fmax"], model_relative=None, model_barrier=None,
                         reference_barrier=reference_barrier,
                         min_distance=float(state["min_distance"]))
    energies = np.array([image.get_potential_energy() for image in images])
    relative = energies - energies[0]
    result = NEBResult(converged=converged, exploded=False, steps=steps,
                       fmax_final=state["fmax"], model_relative=relative.tolist(),
                       model_barrier=barrier(relative), reference_barrier=reference_barrier,
                       min_distance=float(state["min_distance"]))
    if reference is not None:
        rescored = single_points(images, reference())
        result.rescored_relative = (rescored - rescored[0]).tolist()
        result.rescored_barrier = barrier(rescored - rescored[0])
    return result


def reference_neb_path(initial: Atoms, final: Atoms, reference: CalculatorFactory,
                       settings: NEBSettings) -> tuple[list[Atoms], np.ndarray]:
    """A converged NEB of the reference itself: the images and energies of a fixed path."""
    from ase.optimize import FIRE

    images, neb = _band(initial, final, reference, settings)
    if not FIRE(neb, maxstep=settings.max_displacement, logfile=None).run(
            fmax=settings.fmax, steps=settings.max_steps):
        raise RuntimeError(f"the reference NEB did not converge in {settings.max_steps} steps")
    energies = np.array([image.get_potential_energy() for image in images])
    return [_bare(image) for image in images], energies


def linear_path(initial: Atoms, final: Atoms, images: int) -> list[Atoms]:
    """Straight-line images between two endpoints (minimum-image displacements)."""
    from ase.geometry import find_mic

    displacement, _ = find_mic(final.positions - initial.positions, initial.cell, initial.pbc)
    path = []
    for t in np.linspace(0.0, 1.0, images + 2):
        image = initial.copy()
        image.positions = initial.positions + t * displacement
        path.append(_bare(image))
    return path


def _bare(atoms: Atoms) -> Atoms:
    copy = atoms.copy()
    copy.calc = None
    return copy
