"""What a run is: (task, model, regime, seed, hyper-parameters, dataset), hashed to its id.

A run's directory is named by the hash of its resolved config and the dataset hash, so running
the same thing again is a cache hit and an interrupted run resumes in place.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gmdbench.training.trainer import TrainConfig


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    model: str
    model_options: dict[str, Any] = Field(default_factory=dict)
    training: TrainConfig = TrainConfig()
    regime: Literal["scratch"] = "scratch"
    seed: int = 0
    dataset_hash: str

    def resolved(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def run_id(self) -> str:
        text = json.dumps(self.resolved(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def run_dir(self, runs_root: Path) -> Path:
        return Path(runs_root) / f"{self.task}-{self.model}-s{self.seed}-{self.run_id}"


class TrainFileConfig(BaseModel):
    """The YAML given to ``gmd train --config``: model options and training settings."""

    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any] = Field(default_factory=dict)
    training: TrainConfig = TrainConfig()
