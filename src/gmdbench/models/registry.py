"""Models by name: config class, builder, library. Third-party models join via entry points."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from gmdbench.errors import GmdError
from gmdbench.models.base import MLIP


class UnknownModelError(GmdError):
    """A model name that is not registered."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config_class: type[BaseModel]
    build: Callable[[Any, list[int], dict], MLIP]
    library: str
    description: str


def _builtin() -> dict[str, ModelSpec]:
    from gmdbench.models.fairchem_models import (
        PaiNNConfig,
        SchNetConfig,
        build_painn,
        build_schnet,
    )
    from gmdbench.models.mace_model import MACEConfig, build_mace

    return {
        "schnet": ModelSpec("schnet", SchNetConfig, build_schnet, "fairchem-core",
                            "SchNet (Schuett et al. 2017), fairchem's SchNetWrap"),
        "painn": ModelSpec("painn", PaiNNConfig, build_painn, "fairchem-core",
                           "PaiNN (Schuett et al. 2021), fairchem"),
        "mace": ModelSpec("mace", MACEConfig, build_mace, "mace-torch",
                          "MACE (Batatia et al. 2022), mace.modules.MACE"),
    }


def registered_models() -> dict[str, ModelSpec]:
    """Built-in models plus those registered under the ``gmdbench.models`` entry point group."""
    from importlib.metadata import entry_points

    models = _builtin()
    for entry in entry_points(group="gmdbench.models"):
        spec = entry.load()
        models[spec.name] = spec
    return models


def model_config(name: str, overrides: dict[str, Any] | None = None) -> BaseModel:
    models = registered_models()
    if name not in models:
        raise UnknownModelError(f"unknown model {name!r}: available {', '.join(sorted(models))}")
    try:
        return models[name].config_class.model_validate({"name": name, **(overrides or {})})
    except ValidationError as error:
        from gmdbench.config import format_validation_error

        raise GmdError(format_validation_error(error, f"config of model {name!r}")) from error


def build_model(config: BaseModel, elements: list[int], statistics: dict) -> MLIP:
    spec = registered_models()[config.name]
    return spec.build(config, elements, statistics)
