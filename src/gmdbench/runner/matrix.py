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
    regime: Literal["scratch", "zero-shot", "zero-shot-refit", "fine-tune",
                    "fine-tune-head"] = "scratch"
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


class MatrixModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    size: str | None = Field(None, description="a size from configs/models (small, paper)")
    regime: Literal["scratch", "zero-shot", "zero-shot-refit", "fine-tune",
                    "fine-tune-head"] = "scratch"
    training: TrainConfig = TrainConfig()


class MatrixConfig(BaseModel):
    """An experiment matrix: tasks x models x seeds on one preset and reference method."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    tasks: list[str] = Field(min_length=1)
    preset: str = "quick"
    reference: str = "gfn2-xtb"
    data_seed: int = 0
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    models: list[MatrixModel] = Field(min_length=1)
    distance_statistics: bool = Field(
        False, description="compute each dataset's SOAP distances of id_test and ood_test "
        "frames from its train split (written beside the dataset, shown by the report)")


BUILTIN_MATRICES = Path(__file__).parent / "builtin"
BUILTIN_TRAINING = Path(__file__).parents[1] / "configs"


def builtin_training_names() -> list[str]:
    return sorted(p.stem.removeprefix("training_")
                  for p in BUILTIN_TRAINING.glob("training_*.yaml"))


def load_train_file(name_or_path: str | Path) -> TrainFileConfig:
    """A ``gmd train --config`` file: a built-in name (``paper``) or the path of a YAML."""
    from pydantic import ValidationError

    from gmdbench.config import format_validation_error, load_yaml
    from gmdbench.errors import TaskSpecError

    path = BUILTIN_TRAINING / f"training_{name_or_path}.yaml"
    if not path.is_file():
        path = Path(name_or_path)
        if not path.is_file():
            raise TaskSpecError(f"unknown train config {str(name_or_path)!r}: built-in ones are "
                                f"{', '.join(builtin_training_names())}, or give a YAML path")
    try:
        return TrainFileConfig.model_validate(load_yaml(path, "train config") or {})
    except ValidationError as error:
        raise TaskSpecError(format_validation_error(error, f"train config {path}")) from error


def load_matrix(name_or_path: str) -> MatrixConfig:
    from pydantic import ValidationError

    from gmdbench.config import format_validation_error, load_yaml
    from gmdbench.errors import TaskSpecError

    path = BUILTIN_MATRICES / f"{name_or_path}.yaml"
    if not path.is_file():
        path = Path(name_or_path)
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in BUILTIN_MATRICES.glob("*.yaml")))
            raise TaskSpecError(f"unknown run {name_or_path!r}: built-in runs are {known}, "
                                "or give the path of a run YAML")
    try:
        return MatrixConfig.model_validate(load_yaml(path, "run"))
    except ValidationError as error:
        raise TaskSpecError(format_validation_error(error, f"run {path}")) from error
