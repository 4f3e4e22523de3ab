"""Models by name: config class, builder, library. Third-party models join via entry points."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gmdbench.config import format_validation_error, parse_yaml
from gmdbench.errors import GmdError
from gmdbench.models.ase_calculator import ASECalculatorConfig, build_ase_calculator
from gmdbench.models.base import MLIP
from gmdbench.models.chatter import library_chatter
from gmdbench.models.deepset_moe import DeepSetMoEConfig, build_deepset_moe
from gmdbench.models.fairchem_models import (
    DimeNetPPConfig,
    EquiformerV2Config,
    GemNetOCConfig,
    PaiNNConfig,
    SchNetConfig,
    build_dimenetpp,
    build_equiformer_v2,
    build_gemnet_oc,
    build_painn,
    build_schnet,
)
from gmdbench.models.foundation import ANI1xConfig, build_ani1x
from gmdbench.models.mace_model import MACEConfig, build_mace
from gmdbench.models.materials_foundation import (
    CHGNetConfig,
    SevenNetConfig,
    build_chgnet,
    build_sevennet,
)
from gmdbench.models.nequip_model import NequIPConfig, build_nequip


class UnknownModelError(GmdError):
    """A model name that is not registered."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config_class: type[BaseModel]
    build: Callable[[Any, list[int], dict], MLIP]
    library: str
    description: str
    conservative: Callable[[Any], bool] = lambda config: not getattr(config, "direct_forces",
                                                                      False)
    pretrained: bool = False
    elements: str = "any (trained from scratch)"
    # what the forces are where neither "-dE/dx" nor "direct" says it
    forces_note: str | None = None


def _builtin() -> dict[str, ModelSpec]:
    return {
        "schnet": ModelSpec("schnet", SchNetConfig, build_schnet, "fairchem-core",
                            "SchNet (Schuett et al. 2017), fairchem's SchNetWrap"),
        "painn": ModelSpec("painn", PaiNNConfig, build_painn, "fairchem-core",
                           "PaiNN (Schuett et al. 2021), fairchem"),
        "dimenetpp": ModelSpec("dimenetpp", DimeNetPPConfig, build_dimenetpp, "fairchem-core",
                               "DimeNet++ (Gasteiger et al. 2020), fairchem",
                               conservative=lambda config: False,
                               forces_note="partial gradient (-dE/dx through distances only: "
                                           "fairchem detaches its angle terms)"),
        "gemnet_oc": ModelSpec("gemnet_oc", GemNetOCConfig, build_gemnet_oc, "fairchem-core",
                               "GemNet-OC (Gasteiger et al. 2022), fairchem"),
        "equiformer_v2": ModelSpec("equiformer_v2", EquiformerV2Config, build_equiformer_v2,
                                   "fairchem-core", "EquiformerV2 (Liao et al. 2023), fairchem",
                                   conservative=lambda config: False),
        "nequip": ModelSpec("nequip", NequIPConfig, build_nequip, "nequip",
                            "NequIP (Batzner et al. 2022), nequip.model.NequIPGNNModel"),
        "ani1x": ModelSpec("ani1x", ANI1xConfig, build_ani1x, "torchani",
                           "ANI-1x ensemble (Smith et al. 2018), pretrained, H/C/N/O",
                           pretrained=True, elements="H, C, N, O"),
        "chgnet": ModelSpec("chgnet", CHGNetConfig, build_chgnet, "chgnet",
                            "CHGNet 0.3.0 (Deng et al. 2023), pretrained on MPtrj, float32 only",
                            pretrained=True, elements="Z 1-94"),
        "sevennet": ModelSpec("sevennet", SevenNetConfig, build_sevennet, "sevenn",
                              "SevenNet-0 11Jul2024 (Park et al. 2024), pretrained on MPtrj",
                              pretrained=True, elements="89 elements (Z 1-94 but Po, At, Rn, "
                              "Fr, Ra)"),
        "ase-calculator": ModelSpec(
            "ase-calculator", ASECalculatorConfig, build_ase_calculator, "ase",
            "any ASE calculator (options: factory: package.module:factory), zero-shot only",
            pretrained=True, elements="the calculator's"),
        "deepset_moe": ModelSpec("deepset_moe", DeepSetMoEConfig, build_deepset_moe,
                                 "gmd-bench", "DeepSet-MoE (DESIGN.md section 8): "
                                 "E = rho(sum phi), phi a mixture of experts"),
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


SIZES_DIR = Path(__file__).resolve().parent.parent / "configs" / "models"


def model_sizes(name: str) -> dict[str, dict[str, Any]]:
    """The named sizes (``small``, ``paper``) of a built-in model, from configs/models/."""
    path = SIZES_DIR / f"{name}.yaml"
    return parse_yaml(path.read_text()) if path.exists() else {}


def model_config(name: str, overrides: dict[str, Any] | None = None,
                 size: str | None = None) -> BaseModel:
    """A validated model config: the config class's defaults, a named size, then overrides."""
    models = registered_models()
    if name not in models:
        raise UnknownModelError(f"unknown model {name!r}: available {', '.join(sorted(models))}")
    base: dict[str, Any] = {}
    if size is not None:
        sizes = model_sizes(name)
        if size not in sizes:
            raise GmdError(f"model {name!r} has no size {size!r} (sizes: "
                           f"{', '.join(sorted(sizes)) or 'none'})")
        base = dict(sizes[size])
    try:
        return models[name].config_class.model_validate({"name": name, **base,
                                                         **(overrides or {})})
    except ValidationError as error:
        raise GmdError(format_validation_error(
            error, f"config of model {name!r}", models[name].config_class)) from error


def build_model(config: BaseModel, elements: list[int], statistics: dict) -> MLIP:
    """The network of ``config``; what its library prints or warns while importing and
    building goes to the debug log (models.chatter)."""
    spec = registered_models()[config.name]
    with library_chatter(f"model {config.name}"):
        return spec.build(config, elements, statistics)
