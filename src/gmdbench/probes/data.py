"""Training data of a probe suite, as a gmd-bench dataset store (so training and evaluation are
the harness's own): stored frames with energies and forces (e.g. DFT MD), or Langevin MD of the
suite's system driven by its reference calculator.

Splits: frames of ``files`` are split by position (seeded shuffle) into train / val / id_test;
``test_files`` become ood_test. Generated data: ``trajectories`` independent Langevin runs at
``temperature_K`` fill train / val / id_test in turn, and one run at ``ood_temperature_K`` (hotter,
so farther from the training frames) fills ood_test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from pydantic import BaseModel, ConfigDict, Field

from gmdbench.data.store import DatasetStore
from gmdbench.errors import CorruptDatasetError, GmdError


class StoredFrames(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[str] = Field(min_length=1, description="extxyz with energy and forces; "
                             "relative paths are taken from the suite's data root")
    test_files: list[str] = Field(min_length=1)
    val_fraction: float = Field(0.1, gt=0, lt=1)
    id_test_fraction: float = Field(0.1, gt=0, lt=1)
    max_train_frames: int | None = Field(None, ge=1, description="cap on train frames")
    max_test_frames: int | None = Field(None, ge=1, description="cap on ood_test frames")
    seed: int = 0


class GeneratedFrames(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature_K: float = Field(600.0, gt=0)
    ood_temperature_K: float = Field(1200.0, gt=0)
    trajectories: list[str] = Field(default_factory=lambda: ["train", "train", "val",
                                                             "id_test"])
    frames_per_trajectory: int = Field(30, ge=1)
    stride: int = Field(10, ge=1)
    equilibration_steps: int = Field(50, ge=0)
    timestep_fs: float = Field(2.0, gt=0)
    friction_per_fs: float = Field(0.02, gt=0)
    rattle: float = Field(0.05, ge=0, description="A, initial random displacement")
    seed: int = 0


def _read(path: Path) -> list[Atoms]:
    try:
        frames = ase.io.read(path, index=":")
    except (OSError, ValueError, IndexError, KeyError, StopIteration) as error:
        raise CorruptDatasetError(f"frames file {path} is unreadable: {error}") from error
    for index, atoms in enumerate(frames):
        if atoms.calc is None or "energy" not in atoms.calc.results \
                or "forces" not in atoms.calc.results:
            raise CorruptDatasetError(f"{path}: frame {index} has no energy and forces")
    return frames


def _write(store: DatasetStore, atoms: Atoms, energy: float, forces: np.ndarray, split: str,
           trajectory: str, frame: int) -> None:
    keys = {"smiles": atoms.get_chemical_formula(), "trajectory_id": trajectory,
            "frame": int(frame), "split": split}
    store.write_frame(atoms.numbers, atoms.positions, float(energy), np.asarray(forces), keys,
                      cell=atoms.cell.array, pbc=atoms.pbc)


def stored_dataset(spec: StoredFrames, root: Path, out: Path, metadata: dict) -> Path:
    """A dataset store of stored frames; rebuilt only when missing."""
    if out.exists():
        return out
    frames = [a for name in spec.files for a in _read(resolve_data_file(root, name))]
    tests = [a for name in spec.test_files for a in _read(resolve_data_file(root, name))]
    order = np.random.default_rng(spec.seed).permutation(len(frames))
    n_val = max(1, round(spec.val_fraction * len(frames)))
    n_id = max(1, round(spec.id_test_fraction * len(frames)))
    split_of = {}
    for rank, index in enumerate(order):
        split_of[int(index)] = "val" if rank < n_val else "id_test" if rank < n_val + n_id \
            else "train"
    train = [i for i in range(len(frames)) if split_of[i] == "train"]
    if spec.max_train_frames is not None:
        for i in train[spec.max_train_frames:]:
            split_of[i] = None
    if spec.max_test_frames is not None:
        tests = tests[:spec.max_test_frames]
    partial = out.with_suffix(".partial.db")
    partial.unlink(missing_ok=True)
    store = DatasetStore(partial, create=True)
    store.metadata = metadata
    with store.session():
        for index, atoms in enumerate(frames):
            if split_of[index] is not None:
                _write(store, atoms, atoms.calc.results["energy"],
                       atoms.calc.results["forces"], split_of[index], "stored", index)
        for index, atoms in enumerate(tests):
            _write(store, atoms, atoms.calc.results["energy"], atoms.calc.results["forces"],
                   "ood_test", "stored-test", index)
    store.finalize()
    partial.rename(out)
    return out


def generated_dataset(spec: GeneratedFrames, system: Atoms, reference: Callable[[], Calculator],
                      out: Path, metadata: dict,
                      progress: Callable[[str], None] | None = None) -> Path:
    """Langevin MD of ``system`` with the reference; rebuilt only when missing."""
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    if out.exists():
        return out
    partial = out.with_suffix(".partial.db")
    partial.unlink(missing_ok=True)
    store = DatasetStore(partial, create=True)
    store.metadata = metadata
    runs = [(split, spec.temperature_K) for split in spec.trajectories] \
        + [("ood_test", spec.ood_temperature_K)]
    for number, (split, temperature) in enumerate(runs):
        if progress:
            progress(f"reference MD {number + 1}/{len(runs)} ({split}, {temperature:.0f} K)")
        rng = np.random.default_rng([spec.seed, number])
        atoms = system.copy()
        atoms.positions += rng.normal(scale=spec.rattle, size=atoms.positions.shape)
        atoms.calc = reference()
        atoms.set_constraint(FixCom())
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        Stationary(atoms)
        dynamics = Langevin(atoms, timestep=spec.timestep_fs * units.fs,
                            temperature_K=temperature, friction=spec.friction_per_fs / units.fs,
                            fixcm=False, rng=rng)
        if spec.equilibration_steps:
            dynamics.run(spec.equilibration_steps)
        for frame in range(spec.frames_per_trajectory):
            dynamics.run(spec.stride)
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
                raise GmdError(f"reference MD {number} ({split}) gave non-finite numbers at "
                               f"frame {frame}")
            clean = atoms.copy()
            clean.set_constraint()
            _write(store, clean, energy, forces, split, f"md{number}", frame)
    store.finalize()
    partial.rename(out)
    return out


def resolve_data_file(root: Path | None, name: str, what: str = "frames file") -> Path:
    """A suite's data file: absolute, or relative to the suite's data root; it must exist."""
    path = Path(name)
    if not path.is_absolute():
        if root is None:
            raise GmdError(f"{what} {name} is relative but no data root was given "
                           "(gmd probe run SUITE --data DIR)")
        path = root / path
    if not path.exists():
        raise GmdError(f"{what} {path} does not exist")
    return path
