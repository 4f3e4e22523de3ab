"""Pydantic models of the YAML a user writes (besides task specs, see tasks/spec.py).

Strict (extra="forbid"): a misspelt key is an error naming the key, never silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gmdbench.errors import TaskSpecError
from gmdbench.reference.registry import ReferenceConfig


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SamplerConfig(StrictModel):
    """How geometries are generated along a trajectory (DESIGN.md section 5)."""

    kind: Literal["langevin", "normal_modes", "rattle"] = "langevin"
    temperature_K: float = Field(300.0, gt=0)
    timestep_fs: float = Field(0.5, gt=0)
    friction_per_fs: float = Field(0.01, gt=0)
    initial_temperature_factor: float = Field(
        2.0, gt=0, description="initial momenta are drawn at this multiple of temperature_K "
        "and scaled to exactly that kinetic temperature: the conformer starts at an energy "
        "minimum, so about half of the kinetic energy flows into the potential within tens of "
        "fs (equipartition), which a start at 1x would leave the frames cold (~230 K for 300)")
    equilibration_steps: int = Field(200, ge=0)
    stride: int = Field(10, ge=1, description="MD steps between saved frames")
    frames_per_trajectory: int = Field(50, ge=1)
    rattle_stdev: float = Field(0.05, gt=0, description="A, for kind=rattle")
    min_mode_eigenvalue: float = Field(
        1e-3, gt=0, description="eV/(A^2 amu); softer modes are not sampled (normal_modes)"
    )


class TrajectoriesPerRole(StrictModel):
    """Independent trajectories per molecule and role; each has its own conformer and seed."""

    train: int = Field(2, ge=1)
    val: int = Field(1, ge=1)
    id_test: int = Field(1, ge=1)
    ood_test: int = Field(1, ge=1)


class PresetConfig(StrictModel):
    """A dataset size: trajectories per role and the sampler. ``quick``, ``standard``, ``paper``."""

    name: str
    description: str = ""
    trajectories: TrajectoriesPerRole = TrajectoriesPerRole()
    sampler: SamplerConfig = SamplerConfig()
    reference: ReferenceConfig | None = Field(
        None, description="default reference method for this preset (CLI --reference wins)"
    )

    @model_validator(mode="after")
    def _name_is_a_word(self) -> PresetConfig:
        if not self.name or any(c in self.name for c in "/\\ "):
            raise ValueError(f"preset name {self.name!r} must be one word")
        return self


PRESET_DIR = Path(__file__).parent / "presets"
BUILTIN_PRESETS = ("quick", "standard", "paper")


def load_yaml(path: Path, what: str) -> object:
    """Read a YAML file, turning unreadable or malformed files into an error naming the file."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise TaskSpecError(f"cannot read {what} {path}: {error.strerror}") from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TaskSpecError(f"{what} {path} is not valid YAML: {error}") from error


def format_validation_error(error: ValidationError, source: str) -> str:
    """One line per problem, each naming the key path, e.g. ``families.0.smile: Extra inputs``."""
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problems.append(f"{location}: {item['msg']}")
    return f"{source}: " + "; ".join(problems)


def load_preset(name_or_path: str) -> PresetConfig:
    """A built-in preset by name, or a user's preset YAML by path."""
    path = PRESET_DIR / f"{name_or_path}.yaml"
    if name_or_path not in BUILTIN_PRESETS:
        path = Path(name_or_path)
        if not path.is_file():
            raise TaskSpecError(
                f"unknown preset {name_or_path!r}: use {', '.join(BUILTIN_PRESETS)} "
                "or the path of a preset YAML"
            )
    data = load_yaml(path, "preset")
    try:
        return PresetConfig.model_validate(data)
    except ValidationError as error:
        raise TaskSpecError(format_validation_error(error, f"preset {path}")) from error
