"""Build a labelled dataset from a task, a preset, a reference method and a seed.

Work is cut into Dask tasks of about ``chunk_seconds`` each: for MD a task continues a
trajectory segment by segment from its last stored frame; for rattling and normal-mode sampling
frames are independent. The client writes each returned frame in its own transaction and
submits the rest of the trajectory, so the same code runs on an embedded LocalCluster or on any
Dask scheduler, no shared filesystem is needed, and a killed build resumes from what is stored:
frames already written are never recomputed, and the resumed dataset is identical to an
uninterrupted one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from gmdbench.chem.molecules import (
    atomic_numbers_of,
    charge_and_multiplicity,
    elements_of,
    embed_conformers,
)
from gmdbench.config import PresetConfig, SamplerConfig
from gmdbench.data.sampling import (
    Frame,
    harmonic_modes,
    initial_md_frame,
    langevin_segment,
    normal_mode_frame,
    rattled_frame,
)
from gmdbench.data.store import DatasetStore
from gmdbench.errors import DatasetMismatchError, GmdError, LabelError
from gmdbench.provenance import package_versions
from gmdbench.reference.registry import ReferenceConfig, ReferenceMethod, resolve_reference
from gmdbench.tasks.spec import TaskSpec
from gmdbench.tasks.split import TrajectoryPlan, plan_trajectories

log = logging.getLogger(__name__)
_VERSIONED = ("gmd-bench", "ase", "rdkit", "tblite", "pyscf", "numpy", "dask")


@lru_cache(maxsize=64)
def _conformers(smiles: str, n_conformers: int, seed: int) -> tuple[Atoms, ...]:
    return tuple(embed_conformers(smiles, n_conformers, seed))


def conformer_of(plan: TrajectoryPlan) -> Atoms:
    return _conformers(plan.smiles, plan.n_conformers, plan.conformer_seed)[
        plan.conformer_index
    ].copy()


@lru_cache(maxsize=16)
def _method_from_json(config_json: str) -> ReferenceMethod:
    return resolve_reference(ReferenceConfig.model_validate_json(config_json))


def _method(config: ReferenceConfig) -> ReferenceMethod:
    """One method object per worker process and config (configs hold dicts: not hashable)."""
    return _method_from_json(config.model_dump_json())


@lru_cache(maxsize=8)
def _modes_cached(plan: TrajectoryPlan, config_json: str):
    return harmonic_modes(conformer_of(plan), _method_from_json(config_json))


def _modes(plan: TrajectoryPlan, config: ReferenceConfig):
    return _modes_cached(plan, config.model_dump_json())


def compute_frame(
    plan: TrajectoryPlan,
    index: int,
    previous: Frame | None,
    sampler: SamplerConfig,
    reference: ReferenceConfig,
) -> Frame:
    """Frame ``index`` of a trajectory; MD frames continue from ``previous``."""
    method = _method(reference)
    if sampler.kind == "rattle":
        return rattled_frame(conformer_of(plan), method, sampler, plan.seed, index)
    if sampler.kind == "normal_modes":
        conformer = conformer_of(plan)
        return normal_mode_frame(conformer, _modes(plan, reference), method, sampler,
                                 plan.seed, index)
    template = conformer_of(plan)
    if index == 0:
        start = initial_md_frame(template, method, sampler, plan.seed)
        return langevin_segment(template, start, sampler.equilibration_steps, method, sampler,
                                plan.seed, 0)
    return langevin_segment(template, previous, sampler.stride, method, sampler, plan.seed, index)


@dataclass
class ChunkResult:
    """Frames a worker computed in one task, and the failure that stopped it, if any."""

    frames: list[tuple[int, Frame]]
    failure: tuple[int, str] | None = None


def compute_chunk(
    plan: TrajectoryPlan,
    indices: list[int],
    previous: Frame | None,
    sampler: SamplerConfig,
    reference: ReferenceConfig,
    budget_seconds: float,
) -> ChunkResult:
    """Compute frames ``indices`` in order until the time budget is spent (runs on a worker).

    A task returns after about ``budget_seconds`` so that per-task scheduling costs are
    amortised over many frames while a killed build loses only that much work per worker.
    """
    started = time.perf_counter()
    result = ChunkResult(frames=[])
    for index in indices:
        try:
            frame = compute_frame(plan, index, previous, sampler, reference)
        except LabelError as error:  # the reference method failed on this frame (recorded)
            result.failure = (index, f"{type(error).__name__}: {error}")
            break
        result.frames.append((index, frame))
        previous = frame
        if time.perf_counter() - started > budget_seconds:
            break
    return result


def dataset_identity(task: TaskSpec, preset: PresetConfig, reference: ReferenceConfig,
                     seed: int) -> dict[str, Any]:
    """What defines a dataset's content; a resumed build must match it exactly."""
    return {
        "task": task.model_dump(mode="json"),
        "preset": preset.model_dump(mode="json", exclude={"reference"}),
        "reference": reference.model_dump(mode="json"),
        "seed": seed,
    }


@dataclass
class BuildReport:
    frames_total: int
    frames_written: int
    frames_existing: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def check_elements(task: TaskSpec, method: ReferenceMethod) -> None:
    """Refuse, before any work, a molecule with an element the reference cannot treat, or a
    charge or spin the reference cannot set."""
    for molecule in task.molecules():
        where = f"molecule {molecule.smiles}"
        method.check_elements(elements_of(molecule.smiles), where)
        method.state_options(*charge_and_multiplicity(molecule.smiles), where)


# The scheduler serves HTTP (health routes) even without a dashboard, on port 8787 by default:
# with a second gmd-bench command running, Dask warns "Port 8787 is already in use" around the
# command's own output. No dashboard, and the HTTP server on a free port, keep it quiet.
QUIET_SCHEDULER_OPTIONS = {"dashboard": False, "dashboard_address": ":0"}


@contextmanager
def dask_client(workers: int, scheduler: str | None):
    """An embedded LocalCluster (default) or a client of an existing scheduler."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    # One OpenMP thread per worker process: parallelism comes from workers, and labels do not
    # depend on thread counts.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR,
                           scheduler_kwargs=QUIET_SCHEDULER_OPTIONS)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _frame_keys(plan: TrajectoryPlan, index: int, sampler: SamplerConfig,
                level_of_theory: str) -> dict[str, Any]:
    charge, multiplicity = charge_and_multiplicity(plan.smiles)
    return {
        "total_charge": charge,  # ase.db reserves `charge` (the sum of initial charges)
        "multiplicity": multiplicity,
        "smiles": plan.smiles,
        "molecule_id": plan.molecule_id,
        "trajectory_id": plan.trajectory_id,
        "frame": index,
        "split": plan.split,
        "temperature": sampler.temperature_K,
        "seed": plan.seed,
        "level_of_theory": level_of_theory,
        "sampler": sampler.kind,
    }


def _frame_from_row(row: Any) -> Frame:
    return Frame(np.array(row.positions), row.get("momenta"), float(row.energy),
                 np.array(row.forces))


def prepare_store(out: Path, identity: dict[str, Any], method: ReferenceMethod,
                  task: TaskSpec) -> DatasetStore:
    """Open (or create) the store; refuse one built with another task, preset, seed or method."""
    store = DatasetStore(out, create=True)
    metadata = store.metadata
    if metadata:
        stored = {key: metadata.get(key) for key in identity}
        if stored != identity:
            differing = sorted(key for key in identity if stored.get(key) != identity[key])
            raise DatasetMismatchError(
                f"dataset {out} was built with another {', '.join(differing)}; "
                "choose a new --out or the original settings to resume it"
            )
        return store
    elements = set().union(*(elements_of(m.smiles) for m in task.molecules()))
    isolated = method.isolated_atom_energies(elements)
    store.metadata = {
        **identity,
        "level_of_theory": method.level_of_theory,
        "isolated_atom_energies": isolated,
        "versions": package_versions(_VERSIONED),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return store


def build_dataset(
    task: TaskSpec,
    preset: PresetConfig,
    reference: ReferenceConfig,
    seed: int,
    out: str | Path,
    workers: int = 2,
    scheduler: str | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    chunk_seconds: float = 0.5,
) -> BuildReport:
    """Build (or resume) a dataset; ``on_progress(done, total, failures)`` after each frame.

    ``chunk_seconds`` bounds the work of one Dask task, hence what a killed build loses.
    """
    started = time.perf_counter()
    method = resolve_reference(reference)
    check_elements(task, method)
    plans = plan_trajectories(task, preset, seed)
    identity = dataset_identity(task, preset, reference, seed)
    new = not Path(out).exists()
    try:
        return _build(prepare_store(Path(out), identity, method, task), plans, preset, reference,
                      workers, scheduler, on_progress, chunk_seconds, started)
    except BaseException:
        if new:  # a build that failed before storing anything leaves no empty dataset behind
            _remove_if_empty(Path(out))
        raise


def _remove_if_empty(out: Path) -> None:
    try:
        store = DatasetStore(out)
        empty = store.count() == 0 and not store.failures()
    except GmdError:
        return
    if empty:
        for path in (out, Path(f"{out}-wal"), Path(f"{out}-shm")):
            path.unlink(missing_ok=True)


def _build(store: DatasetStore, plans, preset: PresetConfig, reference: ReferenceConfig,
           workers: int, scheduler: str | None, on_progress, chunk_seconds: float,
           started: float) -> BuildReport:
    level = store.metadata["level_of_theory"]
    sampler = preset.sampler
    per_trajectory = sampler.frames_per_trajectory
    total = per_trajectory * len(plans)

    counts = store.frame_counts()
    failed = {(f["trajectory_id"], f["frame"]) for f in store.failures()}
    failed_trajectories = {trajectory for trajectory, _ in failed}
    existing = sum(min(counts.get(plan.trajectory_id, 0), per_trajectory) for plan in plans)
    pending = [p for p in plans if counts.get(p.trajectory_id, 0) < per_trajectory
               and not (sampler.kind == "langevin" and p.trajectory_id in failed_trajectories)]
    report = BuildReport(frames_total=total, frames_written=0, frames_existing=existing)
    if on_progress:
        on_progress(existing, total, len(failed))
    if pending:
        with dask_client(workers, scheduler) as client, store.session():
            _run(client, store, pending, counts, failed, sampler, reference, level, report,
                 on_progress, existing, chunk_seconds)
    store.finalize()
    report.failures = store.failures()
    report.seconds = time.perf_counter() - started
    return report


def _run(client, store, pending, counts, failed, sampler, reference, level, report,
         on_progress, done, budget_seconds) -> None:
    from dask.distributed import as_completed

    per_trajectory = sampler.frames_per_trajectory
    chained = sampler.kind == "langevin"
    futures = as_completed()
    context: dict[str, tuple[TrajectoryPlan, list[int]]] = {}
    failures = len(failed)
    numbers_of: dict[str, np.ndarray] = {}

    def submit(plan: TrajectoryPlan, indices: list[int], previous: Frame | None) -> None:
        future = client.submit(compute_chunk, plan, indices, previous, sampler, reference,
                               budget_seconds, pure=False, priority=-indices[0],
                               key=f"{plan.trajectory_id}:{indices[0]}")
        context[future.key] = (plan, indices)
        futures.add(future)

    for plan in pending:
        have = counts.get(plan.trajectory_id, 0)
        if chained:
            previous = _frame_from_row(store.last_frame(plan.trajectory_id)) if have else None
            submit(plan, list(range(have, per_trajectory)), previous)
        else:
            stored = {row.frame for row in store.rows(trajectory_id=plan.trajectory_id)}
            todo = [index for index in range(per_trajectory)
                    if index not in stored and (plan.trajectory_id, index) not in failed]
            if todo:
                submit(plan, todo, None)

    for future in futures:
        plan, indices = context.pop(future.key)
        try:
            # a reference failure comes back inside the result; anything raised here (a bug,
            # a dead worker) stops the build: frames already written stay stored
            result = future.result()
        finally:
            future.release()
        if plan.smiles not in numbers_of:
            numbers_of[plan.smiles] = atomic_numbers_of(plan.smiles)
        for index, frame in result.frames:
            store.write_frame(numbers_of[plan.smiles], frame.positions, frame.energy,
                              frame.forces, _frame_keys(plan, index, sampler, level),
                              momenta=frame.momenta)
            report.frames_written += 1
            done += 1
            if on_progress:
                on_progress(done, report.frames_total, failures)
        finished = {index for index, _ in result.frames}
        if result.failure is not None:
            index, reason = result.failure
            store.record_failure(plan.trajectory_id, index, plan.smiles, plan.split, reason)
            log.warning("failed %s frame %d (%s): %s", plan.trajectory_id, index, plan.smiles,
                        reason)
            failures += 1
            finished.add(index)
            if on_progress:
                on_progress(done, report.frames_total, failures)
            if chained:
                continue
        remaining = [index for index in indices if index not in finished]
        if remaining:
            last = result.frames[-1][1] if result.frames else None
            submit(plan, remaining, last if chained else None)
