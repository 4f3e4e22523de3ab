"""What a run is and the files of its directory, one layer below every step that uses them.

A run is (task, model, options, regime, training config, seed, dataset); its directory is named
by the hash of its resolved config and the dataset hash, so running the same thing again is a
cache hit and an interrupted run resumes in place. This module holds the run config, how a
run's model is built (seeded, with its reference energies and scale) and rebuilt from its
directory, and which graphs a step needs. Training and evaluation of a run are in
``runner/executor.py``; orchestrating many runs is ``pipeline/``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gmdbench.config import (
    PRETRAINED_REGIMES,
    ModelEntry,
    Regime,
    SplitProtocol,
    TrainConfig,
    format_validation_error,
    load_named,
    one_line,
)
from gmdbench.data.graphs import GraphSet, evaluation_edge_budget, graphset_from_rows
from gmdbench.data.store import DatasetStore
from gmdbench.errors import CheckpointError, GmdError
from gmdbench.files import load_state, load_torch, write_text
from gmdbench.models.base import DTYPES, Potential, default_dtype, resolve_device
from gmdbench.models.calculator import MLIPCalculator
from gmdbench.models.registry import build_model, model_config
from gmdbench.tasks.split import select_frames
from gmdbench.training.reference_energies import (
    anchored_offsets,
    composition_matrix,
    fit_rank,
    force_scale,
    reference_energies,
    resolve_offset_kind,
    warn_if_rank_deficient,
)


class RunConfig(BaseModel):
    """A run; its id is the hash of everything here but ``dataset_rebuild_hash`` (the device it
    ran on is not part of it either)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    model: str
    model_options: dict[str, Any] = Field(default_factory=dict)
    training: TrainConfig = TrainConfig()
    regime: Regime = "scratch"
    seed: int = Field(0, ge=0)
    dataset_hash: str
    init_from: str | None = Field(
        None, description="the run directory name (beside this run's) whose best weights "
        "start this training: a scratch model fine-tuned on more data (active learning)")
    train_trajectories: int | None = Field(
        None, ge=1, description="only the first N train trajectories of each training molecule")
    split: SplitProtocol = "trajectory"
    dataset_rebuild_hash: str | None = Field(
        None, description="the content hash of the dataset file the run trains on, where that "
        "file is an equivalent rebuild of dataset_hash made on another machine (the same "
        "definition, test labels within runner/dataset_match.py's tolerance: another CPU "
        "changes GFN2-xTB's last bits, and so the exact hash). Recorded in config.json, not "
        "part of the run's id: the runs of one study stay one experiment across machines")

    @model_validator(mode="before")
    @classmethod
    def _stored_offsets_are_fit(cls, data: Any) -> Any:
        """A stored run config (config.json, an archive record) names its pretrained offsets
        unless they were ``fit``: :meth:`resolved` leaves that value out, as every run made
        before the option had it, so reading one back must give ``fit``, not the default.
        A scratch or zero-shot run makes no offsets and never stores the option, so it reads
        back with the default, as it was made."""
        if isinstance(data, dict) and isinstance(data.get("training"), dict) and \
                "pretrained_offsets" not in data["training"] and \
                data.get("regime", "scratch") not in ("scratch", "zero-shot"):
            data = {**data, "training": {**data["training"], "pretrained_offsets": "fit"}}
        return data

    def resolved(self) -> dict[str, Any]:
        """The run as its hash sees it. Options added after runs were archived enter it only
        where set away from their default, so every run made before them keeps its id."""
        resolved = self.model_dump(mode="json", exclude={"dataset_rebuild_hash"})
        for key, default in _HASHED_WHEN_SET.items():
            if resolved[key] == default:
                del resolved[key]
        for key, default in _TRAINING_HASHED_WHEN_SET.items():
            if resolved["training"][key] == default:
                del resolved["training"][key]
        # offsets exist only on a pretrained model that gets them; "fit" is what every run
        # made before the option did, so those keep their ids
        if self.regime in ("scratch", "zero-shot") or \
                resolved["training"].get("pretrained_offsets") == "fit":
            resolved["training"].pop("pretrained_offsets", None)
        return resolved

    def stored(self) -> dict[str, Any]:
        """What the run's config.json keeps: :meth:`resolved`, and the content hash of an
        equivalent rebuild where the run trains on one."""
        if self.dataset_rebuild_hash is None:
            return self.resolved()
        return {**self.resolved(), "dataset_rebuild_hash": self.dataset_rebuild_hash}

    def accepts_dataset(self, content_hash: str) -> bool:
        """Is a dataset of this content hash the run's (its own, or its equivalent rebuild)?"""
        return content_hash in (self.dataset_hash, self.dataset_rebuild_hash)

    @property
    def run_id(self) -> str:
        text = json.dumps(self.resolved(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def run_dir(self, runs_root: Path) -> Path:
        return Path(runs_root) / f"{self.task}-{self.model}-s{self.seed}-{self.run_id}"


_HASHED_WHEN_SET = {"init_from": None, "train_trajectories": None, "split": "trajectory"}
_TRAINING_HASHED_WHEN_SET = {"schedule": "plateau"}


class TrainFileConfig(BaseModel):
    """The YAML given to ``gmd train --config``: model options and training settings."""

    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any] = Field(default_factory=dict)
    training: TrainConfig = TrainConfig()


BUILTIN_TRAINING = Path(__file__).parents[1] / "configs"


def load_train_file(name_or_path: str | Path) -> TrainFileConfig:
    """A ``gmd train --config`` file: a built-in name (``paper``) or the path of a YAML."""
    return load_named(name_or_path, BUILTIN_TRAINING, "training_{}.yaml", TrainFileConfig,
                      "train config")[0]


def run_config(entry: ModelEntry, task: str, seed: int, dataset_hash: str) -> RunConfig:
    """The run of a matrix or suite entry: its model options resolved (size, defaults) so that
    the run hash covers every value the model was built with."""
    options = model_config(entry.name, entry.options, size=entry.size).model_dump(
        exclude={"name"})
    return RunConfig(task=task, model=entry.name, model_options=options, regime=entry.regime,
                     training=entry.training, seed=seed, dataset_hash=dataset_hash,
                     train_trajectories=entry.train_trajectories, split=entry.split)


def load_splits(store: DatasetStore, cutoff: float, names: tuple[str, ...],
                run: RunConfig | None = None) -> dict[str, tuple[GraphSet, list[dict]]]:
    """Only the splits a step needs: training builds train and val graphs, evaluation the tests.

    ``run`` applies its data options: a subsample of train trajectories, and the
    random-frames protocol (``tasks/split.py``'s :func:`select_frames`)."""
    protocol = run.split if run else "trajectory"
    subsample = run.train_trajectories if run else None
    rows_by_split = {split: list(store.rows(split=split)) for split in
                     {*names, *(("train", "id_test") if protocol == "random-frames" else ())}}
    splits = {}
    for split in names:
        rows = select_frames(rows_by_split, split, protocol, subsample)
        if not rows:
            raise GmdError(f"dataset {store.path} has no frames in split {split!r}")
        splits[split] = graphset_from_rows(rows, cutoff)
    return splits


def build_potential(run: RunConfig, train_set: GraphSet, isolated: dict[str, float] | None,
                    run_dir: Path, device: torch.device | str = "cpu") -> Potential:
    """The model of a run, seeded, with reference energies and scale from the train split.

    What the network's shape depends on (elements, neighbour statistics) is written to
    ``model_build.json`` so that :func:`load_potential` can rebuild it without the dataset.
    """
    elements = train_set.elements
    statistics = {"avg_num_neighbors": float(np.mean(train_set.n_edges / train_set.n_atoms))}
    write_text(run_dir / "model_build.json", json.dumps(
        {"elements": elements, "statistics": statistics}))
    torch.manual_seed(run.seed)
    network = build_model(model_config(run.model, run.model_options), elements, statistics)
    pretrained = network.metadata.pretrained
    if pretrained == (run.regime == "scratch"):
        allowed = ", ".join(PRETRAINED_REGIMES) if pretrained else "scratch"
        raise GmdError(f"model {run.model!r} cannot run regime {run.regime!r} "
                       f"(its regimes: {allowed})")
    if not pretrained:
        energies = reference_energies(train_set, elements, run.training.reference_energies,
                                      isolated)
        return Potential(network, energies, scale=force_scale(train_set)).to(device)
    potential = Potential(network, {}, scale=1.0).to(device)
    if run.regime != "zero-shot":
        kind = resolve_offset_kind(run.training.pretrained_offsets, elements, isolated)
        if kind == "fit":
            warn_if_rank_deficient(train_set, elements,
                                   "per-element offsets on the pretrained model")
        potential.atomic_energies.data = offsets_on_top(potential, train_set, elements, kind,
                                                        isolated, graph_cutoff(run))
    if run.regime.startswith("fine-tune") and not any(True for _ in network.parameters()):
        raise GmdError(f"model {run.model!r} has no weights to fine-tune; use zero-shot or "
                       "zero-shot-refit")
    if run.regime == "fine-tune-head":
        head = {id(p) for p in network.head_parameters()}
        for parameter in network.parameters():
            parameter.requires_grad_(id(parameter) in head)
    return potential


def reference_energy_summary(run: RunConfig, potential: Potential, train_set: GraphSet,
                             isolated: dict[str, float] | None = None) -> dict[str, object]:
    """Which E0 a run used, as its training summary (and so every report row) records it.

    Offsets on a pretrained model are named by kind; a minimum-norm fit (``fit``) is flagged
    rank-deficient on tied train compositions like E0 ``fit``; anchored and isolated offsets
    are determined whatever the compositions."""
    if potential.metadata.pretrained:
        if run.regime == "zero-shot":
            return {"reference_energies_kind": "model's own",
                    "reference_energies_rank_deficient": False}
        offsets = resolve_offset_kind(run.training.pretrained_offsets, train_set.elements,
                                      isolated)
        kind = OFFSET_KIND_NAMES[offsets]
        fitted = offsets == "fit"
    else:
        kind = run.training.reference_energies
        fitted = kind != "isolated"
    deficient = fitted and fit_rank(train_set, train_set.elements) < len(train_set.elements)
    return {"reference_energies_kind": kind, "reference_energies_rank_deficient": deficient}


# how reports name each kind of offsets on a pretrained model ("fit": the name runs made
# before the other kinds existed carry in the archive)
OFFSET_KIND_NAMES = {"fit": "fitted offsets on the model",
                     "anchored": "offsets fitted on the model, anchored to isolated atoms",
                     "isolated": "isolated-atom offsets on the model"}


def single_atom_energies(potential: Potential, elements: list[int], cutoff: float
                         ) -> np.ndarray:
    """The pretrained model's own energy of each element's isolated atom (no neighbours, no
    offsets added), one structure per element."""
    from ase import Atoms

    saved = potential.atomic_energies.data.clone()
    potential.atomic_energies.data.zero_()
    try:
        atoms = [Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]]) for z in elements]
        graphs = GraphSet(atoms, cutoff)
        device = next(potential.buffers()).device
        _, batch = next(graphs.batches(len(atoms), torch.get_default_dtype(), device=device))
        energies = potential(batch)["energy"].detach().cpu().numpy().astype(np.float64)
    finally:
        potential.atomic_energies.data = saved
    return energies


def offsets_on_top(potential: Potential, train_set: GraphSet, elements: list[int],
                   kind: str = "fit", isolated: dict[str, float] | None = None,
                   cutoff: float = 5.0) -> torch.Tensor:
    """Per-element energy offsets of a pretrained model onto the dataset's level of theory.

    A pretrained model predicts total energies of its own level of theory; the offsets map them
    onto the dataset's, which is what "zero-shot with refitted offsets" means in reports.
    ``fit``: least squares on train residuals (minimum norm); ``isolated``: the reference's
    isolated atoms minus the model's own; ``anchored``: the least-squares fit closest to the
    isolated ones (:func:`anchored_offsets`).
    """
    device = next(potential.buffers()).device
    table = torch.zeros(119, dtype=torch.float64, device=device)
    anchor = None
    if kind in ("isolated", "anchored"):
        from ase.data import chemical_symbols

        reference = np.array([isolated[chemical_symbols[z]] for z in elements])
        anchor = reference - single_atom_energies(potential, elements, cutoff)
    if kind == "isolated":
        solution = anchor
    else:
        predicted = [potential(batch)["energy"].detach().cpu().numpy()
                     for _, batch in train_set.batches(32, torch.get_default_dtype(),
                                                       device=device,
                                                       max_edges=evaluation_edge_budget())]
        residual = train_set.energy - np.concatenate(predicted)
        counts = composition_matrix(train_set, elements)
        if kind == "anchored":
            solution = anchored_offsets(counts, residual, anchor)
        else:
            solution, *_ = np.linalg.lstsq(counts, residual, rcond=None)
    table[elements] = torch.as_tensor(solution, dtype=torch.float64, device=device)
    return table


def read_run_config(run_dir: Path) -> tuple[RunConfig, dict]:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise GmdError(f"{run_dir} is not a run directory (no config.json)")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise GmdError(f"{path} is not a valid run config: {one_line(str(error))}") from error
    if not isinstance(config, dict):
        raise GmdError(f"{path} is not a valid run config: expected a JSON object")
    try:
        run = RunConfig.model_validate({k: v for k, v in config.items() if k != "dataset_path"})
    except ValidationError as error:
        raise GmdError(format_validation_error(error, f"{path} is not a valid run config",
                                               RunConfig)) from error
    return run, config


def load_potential(run_dir: Path, device: torch.device | str = "cpu") -> Potential:
    """The trained potential of a run (best weights on val), in the run's precision, on
    ``device`` (weights are read to the host first, so a checkpoint written on a GPU loads on
    any machine)."""
    run_dir = Path(run_dir)
    run, _ = read_run_config(run_dir)
    if not (run_dir / "best.pt").exists():
        raise GmdError(f"run {run_dir} has no trained weights (best.pt)")
    build = json.loads((run_dir / "model_build.json").read_text())
    dtype = DTYPES[run.training.dtype]
    with default_dtype(dtype):
        torch.manual_seed(run.seed)
        network = build_model(model_config(run.model, run.model_options), build["elements"],
                              build["statistics"])
        potential = Potential(network, {})
        potential.to(dtype)
        try:
            weights = load_torch(run_dir / "best.pt", "weights")
        except CheckpointError as error:  # torn: only retraining gives the best weights back
            raise CheckpointError(
                f"weights {run_dir / 'best.pt'} are unreadable (torn by a kill or not written "
                f"by gmd-bench); they cannot be rebuilt from the last checkpoint: delete the "
                f"run directory {run_dir} and train it again") from error
        load_state(potential, weights, run_dir / "best.pt")
    return potential.to(resolve_device(device))


def graph_cutoff(run: RunConfig) -> float:
    config = model_config(run.model, run.model_options)
    return float(getattr(config, "cutoff", None) or config.r_max)


def run_calculator(run_dir: Path, dtype: torch.dtype | None = None,
                   device: torch.device | str = "cpu") -> MLIPCalculator:
    """The trained model of a run as an ASE calculator (its own precision by default)."""
    potential = load_potential(run_dir, device)
    return MLIPCalculator(potential, dtype=dtype or next(potential.parameters()).dtype)
