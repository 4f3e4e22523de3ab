"""Cost estimate of a dataset build, printed (and confirmed) before a large build starts.

"Large" is decided by the planned number of reference calls, counted without running any
(``planned_reference_calls``), whatever the preset is called; only then is one call per
molecule timed for the estimate."""

from __future__ import annotations

import time
from dataclasses import dataclass

from gmdbench.chem.molecules import embed_conformers
from gmdbench.config import PresetConfig
from gmdbench.reference.registry import ReferenceMethod, label_with_retries
from gmdbench.tasks.spec import TaskSpec


@dataclass
class CostEstimate:
    molecules: int
    trajectories: int
    frames: int
    reference_calls: int
    cpu_seconds: float

    def wall_hours(self, workers: int) -> float:
        return self.cpu_seconds / max(workers, 1) / 3600.0


def calls_per_trajectory(preset: PresetConfig) -> int:
    sampler = preset.sampler
    if sampler.kind == "langevin":
        steps = sampler.equilibration_steps + sampler.stride * (sampler.frames_per_trajectory - 1)
        return 1 + steps
    return sampler.frames_per_trajectory


LARGE_BUILD_CALLS = 250_000  # above this many reference calls a build shows its estimate
# and needs --yes (the standard-x4 preset of fragment duplication plans about 164,000)


def planned_reference_calls(task: TaskSpec, preset: PresetConfig) -> int:
    """Reference calls a full build of ``task`` at ``preset`` makes (no call is run)."""
    counts = preset.trajectories
    trajectories = sum(counts.train + counts.val + counts.id_test if m.role == "train"
                       else counts.ood_test for m in task.molecules())
    return trajectories * calls_per_trajectory(preset)


def estimate_cost(task: TaskSpec, preset: PresetConfig, method: ReferenceMethod) -> CostEstimate:
    """Time one reference call per molecule and scale by the calls its trajectories need."""

    counts = preset.trajectories
    per_trajectory = calls_per_trajectory(preset)
    cpu_seconds = 0.0
    trajectories = 0
    for molecule in task.molecules():
        n = counts.train + counts.val + counts.id_test if molecule.role == "train" \
            else counts.ood_test
        conformer = embed_conformers(molecule.smiles, 1, seed=0)[0]
        started = time.perf_counter()
        label_with_retries(conformer, method)
        cpu_seconds += (time.perf_counter() - started) * n * per_trajectory
        trajectories += n
    return CostEstimate(
        molecules=len(task.molecules()),
        trajectories=trajectories,
        frames=trajectories * preset.sampler.frames_per_trajectory,
        reference_calls=trajectories * per_trajectory,
        cpu_seconds=cpu_seconds,
    )
