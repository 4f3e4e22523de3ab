"""A probe suite: one YAML naming the system, its reference, the paths (with their class), the
sliding definition, MD stability, and the models x regimes with their training data.

``gmd probe run SUITE.yaml [--data DIR]`` trains (or reuses) each model through the harness,
then runs every probe with every model. Each (model, probe) result is a JSON file under
``OUT/probes/<model label>/``, written as soon as it is computed, so an interrupted suite
resumes where it stopped; reference paths and sliding energies are cached the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gmdbench.config import Device, ModelEntry, load_named
from gmdbench.dotted import resolve_dotted
from gmdbench.errors import GmdError
from gmdbench.files import write_text
from gmdbench.models.registry import model_config
from gmdbench.names import SafeName
from gmdbench.probes.data import GeneratedFrames, StoredFrames, resolve_data_file
from gmdbench.probes.md import MDSettings
from gmdbench.probes.neb import NEBSettings
from gmdbench.probes.sliding import SlidingSettings
from gmdbench.reference.registry import ReferenceConfig, resolve_reference

BUILTIN_SUITES = Path(__file__).parent / "builtin"


class SystemSpec(BaseModel):
    """An ase.Atoms from a builder (``package.module:function`` with options) or a file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    builder: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    file: str | None = None
    index: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> SystemSpec:
        if (self.builder is None) == (self.file is None):
            raise ValueError("a system needs exactly one of builder, file")
        return self


class PathSpec(BaseModel):
    """A migration path: stored images with energies, or endpoints whose reference path
    gmd-bench computes (a converged reference NEB, or straight-line images)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    path_class: Literal["interpolation", "extrapolation"] | None = Field(None, alias="class")
    file: str | None = None
    energy_key: str = Field("energy", description="atoms.info key, or 'energy' (calculator)")
    endpoints: str | None = Field(None, description="module:function(system) -> (initial, "
                                  "final)")
    source: Literal["neb", "linear"] = "neb"
    images: int = Field(5, ge=1, description="intermediate images of a computed path")
    self_consistent: bool = Field(True, description="also run the model's own NEB between "
                                  "the path's endpoints")

    @model_validator(mode="after")
    def _one_source(self) -> PathSpec:
        if (self.file is None) == (self.endpoints is None):
            raise ValueError(f"path {self.name}: give exactly one of file, endpoints")
        return self


class SlidingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: SystemSpec
    settings: SlidingSettings


class ProbeSuite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: SafeName
    description: str = ""
    system: SystemSpec
    reference: str | None = Field(None, description="a reference method (emt, gfn1-xtb, "
                                  "pyscf:..., module:factory); none: stored data only")
    training_data: StoredFrames | GeneratedFrames
    paths: list[PathSpec] = Field(default_factory=list)
    neb: NEBSettings = NEBSettings()
    sliding: SlidingSpec | None = None
    md: MDSettings | None = None
    equilibrium: bool = Field(True, description="energy and force errors on ood_test frames")
    models: list[ModelEntry] = Field(default_factory=list)
    reference_as_model: bool = Field(False, description="score the reference itself as a "
                                     "model too: a check that every error is 0")
    representations: bool = Field(True, description="CKA / PCA / t-SNE of the models' node "
                                  "features on the path images")
    device: Device = "auto"

    @model_validator(mode="before")
    @classmethod
    def _stored_data_fits_its_e0(cls, data: Any) -> Any:
        """Stored frames without a reference method carry no isolated-atom energies, so a
        scratch model's E0 must be fitted on the train compositions: that is the default
        here (an explicit ``reference_energies: isolated`` is refused below, before any
        work). A rank-deficient fit is flagged where it is made
        (``training/reference_energies.py``)."""
        if not isinstance(data, dict) or data.get("reference") is not None:
            return data
        training_data = data.get("training_data")
        if not (isinstance(training_data, dict) and "files" in training_data):
            return data
        models = []
        for entry in data.get("models") or []:
            if isinstance(entry, dict) and entry.get("regime", "scratch") == "scratch":
                training = dict(entry.get("training") or {})
                training.setdefault("reference_energies", "fit")
                entry = {**entry, "training": training}
            models.append(entry)
        return {**data, "models": models}

    @model_validator(mode="after")
    def _needs_reference(self) -> ProbeSuite:
        if self.reference is None:
            if isinstance(self.training_data, GeneratedFrames):
                raise ValueError("generated training data needs a reference")
            if any(p.endpoints for p in self.paths) or self.sliding or self.reference_as_model:
                raise ValueError("computed paths, sliding and reference_as_model need a "
                                 "reference")
        if not self.models and not self.reference_as_model:
            raise ValueError("a suite needs models (or reference_as_model: true)")
        if self.reference is None and isinstance(self.training_data, StoredFrames):
            isolated = [entry.name for entry in self.models if entry.regime == "scratch"
                        and entry.training.reference_energies == "isolated"]
            if isolated:
                raise ValueError(
                    f"models {', '.join(isolated)} ask for reference_energies: isolated, but "
                    "stored training data without a reference method has no isolated-atom "
                    "energies: use reference_energies: fit (the default here)")
        return self


def builtin_suite_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_SUITES.glob("*.yaml"))


def load_suite(name_or_path: str | Path) -> tuple[ProbeSuite, Path]:
    """A suite by built-in name or path; also the folder its relative paths start from."""
    suite, path = load_named(name_or_path, BUILTIN_SUITES, "{}.yaml", ProbeSuite, "probe suite")
    return suite, path.parent


def check_inputs(suite: ProbeSuite, root: Path | None) -> None:
    """Every file and ``module:function`` a suite names, checked before any work (a missing
    path file used to fail only after the MD and the training)."""
    if isinstance(suite.training_data, StoredFrames):
        for name in (*suite.training_data.files, *suite.training_data.test_files):
            resolve_data_file(root, name)
    systems = [suite.system] + ([suite.sliding.system] if suite.sliding else [])
    for system in systems:
        if system.builder:
            resolve_dotted(system.builder, "system builder")
        else:
            resolve_data_file(root, system.file, "system file")
    for spec in suite.paths:
        if spec.file:
            resolve_data_file(root, spec.file, f"path {spec.name!r} file")
        else:
            resolve_dotted(spec.endpoints, f"path {spec.name!r} endpoints")
    for entry in suite.models:  # an unknown name or a bad option fails now, not after the data
        model_config(entry.name, entry.options, size=entry.size)
    stored_paths = [spec for spec in suite.paths if spec.file]
    if stored_paths:
        # a stored path may be another cell of the material (one Cr where the MD cell has
        # two), but it may not hold an element the system, and so the training data, lacks
        elements = set(build_system(suite.system, root).get_chemical_symbols())
        for spec in stored_paths:
            images = ase.io.read(resolve_data_file(root, spec.file), index=":")
            for index, image in enumerate(images):
                foreign = sorted(set(image.get_chemical_symbols()) - elements)
                if foreign:
                    raise GmdError(
                        f"path {spec.name!r} file {spec.file}: image {index} holds "
                        f"{', '.join(foreign)}, which the suite's system "
                        f"({', '.join(sorted(elements))}) lacks: no model trained on it "
                        "knows that element")


def call_dotted(dotted: str, *args, **kwargs):
    return resolve_dotted(dotted, "function")(*args, **kwargs)


def build_system(spec: SystemSpec, root: Path | None) -> Atoms:
    if spec.builder:
        return call_dotted(spec.builder, **spec.options)
    path = Path(spec.file)
    if not path.is_absolute():
        if root is None:
            raise GmdError(f"system file {spec.file} is relative but no data root was given")
        path = root / path
    if not path.exists():
        raise GmdError(f"system file {path} does not exist")
    atoms = ase.io.read(path, index=spec.index)
    atoms.calc = None
    return atoms


def suite_hash(suite: ProbeSuite) -> str:
    # the device is where the suite runs, not what it computes: not part of the hash
    return hashlib.sha256(json.dumps(suite.model_dump(mode="json", by_alias=True,
                                                      exclude={"device"}),
                                     sort_keys=True).encode()).hexdigest()[:16]


class CachedJSON:
    """A folder of JSON results: compute once, reuse after an interruption."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str, compute: Callable[[], dict]) -> dict:
        path = self.folder / f"{key}.json"
        if path.exists():
            return json.loads(path.read_text())
        value = compute()
        write_text(path, json.dumps(value, indent=2))
        return value


def path_energies(images: list[Atoms], key: str) -> np.ndarray:
    energies = []
    for index, image in enumerate(images):
        if key in image.info:
            energies.append(float(image.info[key]))
        elif key == "energy" and image.calc is not None and "energy" in image.calc.results:
            energies.append(float(image.calc.results["energy"]))
        else:
            raise GmdError(f"path image {index} has no {key!r}")
    return np.array(energies)


def reference_factory(suite: ProbeSuite) -> Callable[[], Calculator] | None:
    if suite.reference is None:
        return None
    method = resolve_reference(ReferenceConfig(name=suite.reference))
    return method.make_calculator
