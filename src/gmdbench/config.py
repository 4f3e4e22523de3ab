"""Pydantic models of the YAML a user writes (besides task specs, see tasks/spec.py).

Strict (extra="forbid"): a misspelt key is an error naming the key, never silently ignored.
"""

from __future__ import annotations

import re
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gmdbench.errors import ConfigError, GmdError
from gmdbench.names import SafeName
from gmdbench.reference.registry import ReferenceConfig

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"
Device = Annotated[str, Field(pattern=DEVICE_PATTERN, description=(
    "auto (a GPU when there is one), cpu, cuda or cuda:N; recorded with each run, not part of "
    "its hash"))]
Regime = Literal["scratch", "zero-shot", "zero-shot-refit", "fine-tune", "fine-tune-head"]
REGIMES: tuple[str, ...] = Regime.__args__
SplitProtocol = Literal["trajectory", "random-frames"]
PRETRAINED_REGIMES = tuple(r for r in REGIMES if r != "scratch")


class TrainConfig(StrictModel):
    """Training hyper-parameters; recorded with every run (``training:`` in every YAML)."""

    epochs: int = Field(50, ge=1)
    batch_size: int = Field(8, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    optimizer: Literal["adam", "adamw"] = "adamw"
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["plateau", "cosine"] = Field(
        "plateau", description="learning-rate schedule: reduce on a val plateau (factor, "
        "patience), or cosine from learning_rate down to min_learning_rate at `epochs` (the "
        "rate is sure to decay within the budget, whatever the val curve does)")
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    plateau_patience: int = Field(5, ge=0)
    min_learning_rate: float = Field(1e-6, ge=0)
    ema_decay: float | None = Field(0.99, gt=0, lt=1)
    gradient_clip: float | None = Field(10.0, gt=0)
    energy_weight: float = Field(1.0, ge=0)
    force_weight: float = Field(10.0, ge=0)
    loss: Literal["mse", "mae_l2"] = "mse"
    early_stopping_patience: int | None = Field(20, ge=1)
    dtype: Literal["float32", "float64"] = "float32"
    reference_energies: Literal["fit", "isolated"] = Field(
        "isolated", description="E0 per element: the reference method's isolated atoms "
        "(default) or a least-squares fit on train (flagged when rank-deficient)")
    pretrained_offsets: Literal["auto", "anchored", "isolated", "fit"] = Field(
        "auto", description="per-element offsets on a pretrained model (zero-shot-refit, "
        "fine-tune, fine-tune-head): `isolated` = the reference's isolated atoms minus the "
        "model's own single-atom energies; `anchored` = the least-squares fit on train closest "
        "to those (the plain fit where train determines it, isolated where it does not); "
        "`fit` = the minimum-norm fit (runs before 2026-12-05; rank-deficient on tied "
        "compositions); `auto` (default) = anchored where the dataset stores isolated atoms, "
        "else fit")


class ModelEntry(StrictModel):
    """One model of a run matrix or a probe suite: what to build and how to train it.

    A matrix trains every entry with each of its ``seeds`` (``seed`` here is then not used); a
    probe suite trains each entry once, with ``seed``.
    """

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    size: str | None = Field(None, description="a size from configs/models (small, paper)")
    regime: Regime = "scratch"
    training: TrainConfig = TrainConfig()
    seed: int = Field(0, ge=0)
    seeds: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, min_length=1, description="a matrix entry's own seeds (default: the matrix's)")
    train_trajectories: int | None = Field(
        None, ge=1, description="train on the first N train trajectories of each training "
        "molecule only (data-size series on one dataset: the test frames stay the same)")
    split: SplitProtocol = Field(
        "trajectory", description="trajectory (ours: ID test is its own trajectories) or "
        "random-frames (the GMD-26 authors' probable protocol: ID test frames drawn at random "
        "from the training trajectories; an ablation)")

    @property
    def label(self) -> str:
        return f"{self.name}-{self.regime}-s{self.seed}"


class SlurmClusterConfig(StrictModel):
    """``--cluster-config`` for ``--cluster slurm``: what each SLURM job (one Dask worker
    process per job by default) asks for; handed to dask-jobqueue's ``SLURMCluster``."""

    cores: int = Field(ge=1, description="CPU cores per job")
    memory: str = Field(pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
                        description="memory per job, e.g. 32GB")
    walltime: str = Field("04:00:00", pattern=r"^(\d+-)?\d{1,2}:\d{2}:\d{2}$",
                          description="[D-]HH:MM:SS per job")
    gpus_per_job: int = Field(0, ge=0, le=1, description="1: each job gets one GPU "
                              "(--gres=gpu:1) and runs one training at a time on it, with "
                              "`cores` CPUs; for more GPUs ask for more jobs (max_jobs)")
    processes: int = Field(1, ge=1, description="Dask worker processes per job")
    queue: str | None = Field(None, description="SLURM partition (-p)")
    account: str | None = Field(None, description="SLURM account (-A)")
    max_jobs: int = Field(4, ge=1, description="at most this many jobs; fewer when the "
                          "matrix has fewer runs")
    job_directives: list[str] = Field(default_factory=list, description="extra #SBATCH "
                                      "options, e.g. --constraint=a100")
    job_script_prologue: list[str] = Field(default_factory=list, description="shell lines "
                                           "before the worker starts (module load, activate)")
    local_directory: str | None = Field(None, description="scratch folder on the nodes")
    python: str | None = Field(None, description="the nodes' python (default: this one)")

    @model_validator(mode="after")
    def _one_worker_per_gpu(self) -> SlurmClusterConfig:
        if self.gpus_per_job and self.processes != 1:
            raise ValueError("gpus_per_job: 1 runs one worker process per job (processes: 1)")
        return self


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

    name: SafeName
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
BUILTIN_PRESETS = ("quick", "standard", "standard-x4", "paper")


class StrictLoader(yaml.SafeLoader):
    """YAML as a user means it (DESIGN §11): a key given twice in one mapping is an error (the
    first value would silently vanish), and only true/false are booleans (YAML 1.2): the YAML
    1.1 words yes/no/on/off stay strings, so ``epochs: yes`` is refused as not a number and a
    SMILES ``NO`` (nitric oxide) stays ``"NO"``. Merge keys (``<<: *anchor``) still work: an
    explicit key after a merge overrides the merged one, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_BOOL_TAG = "tag:yaml.org,2002:bool"
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
StrictLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def parse_yaml(text: str) -> object:
    """YAML text read with :class:`StrictLoader`."""
    return yaml.load(text, Loader=StrictLoader)


def load_yaml(path: Path, what: str, error_class: type[GmdError] = ConfigError) -> object:
    """Read a YAML file (strictly: :class:`StrictLoader`), turning unreadable or malformed files
    into one line naming the file."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise error_class(f"cannot read {what} {path}: {reason}") from error
    try:
        return parse_yaml(text)
    except yaml.YAMLError as error:
        raise error_class(f"{what} {path} is not valid YAML: {one_line(str(error))}") from error


def one_line(text: str) -> str:
    """A message folded onto one line (library messages often span several)."""
    return " ".join(str(text).split())


def format_validation_error(error: ValidationError, source: str,
                            model: type[BaseModel] | None = None) -> str:
    """One line per problem, each naming the key path, e.g. ``families.0.smile: Extra inputs``;
    given the validated ``model``, a misspelt key also gets the keys allowed there (the
    closest first), so ``training.lr`` points to ``learning_rate``."""
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problem = f"{location}: {item['msg']}"
        if item["type"] == "extra_forbidden" and model is not None:
            problem += _allowed_keys_hint(model, item["loc"])
        problems.append(problem)
    return f"{source}: " + "; ".join(problems)


def _allowed_keys_hint(model: type[BaseModel], location: tuple[str | int, ...]) -> str:
    """`` (did you mean X? allowed: ...)`` for an unknown key at ``location`` of ``model``."""
    keys = _keys_at(model, location[:-1])
    if not keys:
        return ""
    close = get_close_matches(str(location[-1]), keys, n=1, cutoff=0.5)
    if not close:  # an abbreviation (lr -> learning_rate) is far by edit distance
        words = str(location[-1]).lower()
        close = [key for key in keys if words and "".join(w[0] for w in key.split("_")) == words]
    guess = f"did you mean {close[0]}? " if close else ""
    return f" ({guess}allowed: {', '.join(sorted(keys))})"


def _keys_at(model: type[BaseModel], path: tuple[str | int, ...]) -> list[str]:
    """The field names of the pydantic model found by following ``path`` (keys and list
    entries) from ``model``; empty where the path leaves pydantic models."""
    current: type[BaseModel] | None = model
    for part in path:
        if current is None:
            return []
        if isinstance(part, int):  # a list entry: the model is the list's item type
            continue
        field = _fields_by_key(current).get(part)
        current = _model_in(field.annotation) if field is not None else None
    return list(_fields_by_key(current)) if current is not None else []


def _fields_by_key(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields under the keys a YAML uses (the alias where a field has one)."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside a field's type (``X``, ``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def load_named(name_or_path: str | Path, folder: Path, pattern: str, model: type[M],
               what: str) -> tuple[M, Path]:
    """A built-in YAML by name (``folder / pattern.format(name)``) or a user's YAML by path,
    validated as ``model``; also the path it came from. Errors name the input in one line."""
    path = folder / pattern.format(name_or_path)
    if not path.is_file():
        path = Path(name_or_path)
        if not path.is_file():
            prefix = pattern.split("{}")[0]
            names = sorted(p.stem.removeprefix(prefix) for p in folder.glob(pattern.format("*")))
            raise ConfigError(f"unknown {what} {str(name_or_path)!r}: built-in ones are "
                              f"{', '.join(names)}, or give the path of a YAML")
    try:
        return model.model_validate(load_yaml(path, what) or {}), path
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, f"{what} {path}", model)) from error


def load_preset(name_or_path: str) -> PresetConfig:
    """A built-in preset by name, or a user's preset YAML by path."""
    return load_named(name_or_path, PRESET_DIR, "{}.yaml", PresetConfig, "preset")[0]
