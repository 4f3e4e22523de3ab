"""Does a built dataset hold every frame its build planned? (A killed or disk-full build does
not, and must not be trained or evaluated on as if it did.)

The plan is recomputed from the dataset's own identity (task, preset, seed in its metadata), as
the build computes it, so every dataset ever built can answer, including those written before
this check existed. A trajectory counts as finished when it has all its frames or, for a chained
sampler (Langevin MD), a recorded failure that ended it; a non-chained sampler's failed frames
count as done (they are recorded, and a rerun does not retry them). A dataset without an
identity (imported from extxyz, a stored DFT set) plans nothing and is complete as it is.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gmdbench.config import PresetConfig
from gmdbench.data.store import DatasetStore
from gmdbench.errors import GmdError
from gmdbench.tasks.spec import TaskSpec
from gmdbench.tasks.split import plan_trajectories


@dataclass(frozen=True)
class Completeness:
    """Frames done against frames planned (None: nothing planned, an imported dataset)."""

    done: int
    planned: int | None

    @property
    def complete(self) -> bool:
        return self.planned is None or self.done >= self.planned


def completeness(store: DatasetStore) -> Completeness:
    """Frames done against the build's plan (see the module docstring)."""
    metadata = store.metadata
    if not {"task", "preset", "seed"} <= set(metadata):
        return Completeness(store.count(), None)
    preset = PresetConfig.model_validate(metadata["preset"])
    plans = plan_trajectories(TaskSpec.model_validate(metadata["task"]), preset,
                              int(metadata["seed"]))
    per_trajectory = preset.sampler.frames_per_trajectory
    counts = store.frame_counts()
    failures = Counter(failure["trajectory_id"] for failure in store.failures())
    chained = preset.sampler.kind == "langevin"
    done = 0
    for plan in plans:
        stored = counts.get(plan.trajectory_id, 0)
        if chained and failures[plan.trajectory_id]:
            done += per_trajectory  # the failure ended the chain: nothing more will come
        else:
            done += min(stored + failures[plan.trajectory_id], per_trajectory)
    return Completeness(done, per_trajectory * len(plans))


def require_complete(store: DatasetStore) -> None:
    """Refuse, in one line, a dataset whose build has not finished."""
    state = completeness(store)
    if not state.complete:
        raise GmdError(f"dataset {store.path} is incomplete: {state.done} of {state.planned} "
                       "frames; rerun the same `gmd data build` to finish it")
