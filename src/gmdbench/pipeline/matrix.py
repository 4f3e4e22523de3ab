"""Run matrices: tasks x models x seeds on one preset and reference method, end to end.

dataset (built or resumed) -> training and evaluation of every run (cached by run hash) ->
dataset distances and representations where asked -> the report. Everything is cached, so the
same command resumes an interrupted matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gmdbench.config import Device, ModelEntry, load_named, load_preset
from gmdbench.data.generate import build_dataset
from gmdbench.data.store import DatasetStore
from gmdbench.errors import GmdError
from gmdbench.models.base import check_device_spelling, resolve_device
from gmdbench.names import SafeName
from gmdbench.pipeline.clusters import ClusterSpec, check_cluster
from gmdbench.pipeline.distances import write_dataset_distance
from gmdbench.pipeline.representations import write_task_representations
from gmdbench.pipeline.runs import Executor, train_and_evaluate
from gmdbench.reference.registry import ReferenceConfig
from gmdbench.report.build import build_report
from gmdbench.runner.archive import default_archive
from gmdbench.runner.results import ResultsStore
from gmdbench.runner.runs import RunConfig, run_config
from gmdbench.tasks.spec import load_task


class MatrixConfig(BaseModel):
    """An experiment matrix: tasks x models x seeds on one preset and reference method."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: SafeName
    tasks: list[str] = Field(min_length=1)
    preset: str = "quick"
    reference: str = "gfn2-xtb"
    data_seed: int = Field(0, ge=0)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    models: list[ModelEntry] = Field(min_length=1)
    device: Device = "auto"
    distance_statistics: bool = Field(
        False, description="compute each dataset's SOAP distances of id_test and ood_test "
        "frames from its train split (written beside the dataset, shown by the report)")
    order: Literal["seed", "entry"] = Field(
        "seed", description="seed: every entry's first seed before any second seed (a matrix "
        "stopped part-way has every model once); entry: each entry's seeds in turn, in the "
        "file's order (a study whose first entries matter most)")

    def cells(self) -> list[tuple[int, int]]:
        """Every (entry index, seed) the matrix trains on each task, in its run order; an
        entry's own ``seeds`` replace the matrix's."""
        seeds = [entry.seeds or self.seeds for entry in self.models]
        if self.order == "entry":
            return [(index, seed) for index, own in enumerate(seeds) for seed in own]
        every = sorted({seed for own in seeds for seed in own},
                       key=lambda seed: min(own.index(seed) for own in seeds if seed in own))
        return [(index, seed) for seed in every for index, own in enumerate(seeds)
                if seed in own]

    @property
    def n_runs(self) -> int:
        return len(self.tasks) * len(self.cells())


BUILTIN_MATRICES = Path(__file__).parent / "builtin"


def builtin_matrices() -> list[str]:
    """The names of the built-in run matrices (``gmd run NAME``), from their folder."""
    return sorted(path.stem for path in BUILTIN_MATRICES.glob("*.yaml"))


def load_matrix(name_or_path: str) -> MatrixConfig:
    """A built-in run matrix by name (quick, standard, ...) or a run YAML by path."""
    return load_named(name_or_path, BUILTIN_MATRICES, "{}.yaml", MatrixConfig, "run")[0]


def plan_matrix(matrix: MatrixConfig, out_dir: Path, workers: int = 2,
                scheduler: str | None = None,
                on_event: Callable[[str], None] | None = None) -> list[tuple[RunConfig, Path]]:
    """Build (or resume) each task's dataset and its distance statistics where asked; return
    every (run, dataset) of the matrix, seed by seed (all models of the first seed come
    first, so a matrix stopped part-way has every model at least once)."""
    say = on_event or (lambda message: None)
    preset = load_preset(matrix.preset)
    planned: list[tuple[RunConfig, Path]] = []
    for task_name in matrix.tasks:
        task = load_task(task_name)
        data = out_dir / "datasets" / f"{task.name}-{preset.name}-seed{matrix.data_seed}.db"
        say(f"dataset {task.name} ({preset.name}) -> {data}")
        report = build_dataset(task, preset, ReferenceConfig(name=matrix.reference),
                               matrix.data_seed, data, workers=workers, scheduler=scheduler)
        if report.failures:
            raise GmdError(f"dataset {data}: {len(report.failures)} frame(s) failed; see "
                           f"`gmd data info {data}`")
        dataset_hash = DatasetStore(data).content_hash()
        if matrix.distance_statistics:
            say(f"SOAP distances of {task.name}'s test frames -> "
                f"{write_dataset_distance(data)}")
        planned += [(run_config(matrix.models[index], task.name, seed, dataset_hash), data)
                    for index, seed in matrix.cells()]
    return planned


def matrix_device(matrix: MatrixConfig, device: str | None, scheduler: str | None,
                  cluster: ClusterSpec | None) -> str:
    """Where runs train: resolved here for a local run (a GPU this machine lacks is refused
    before any work), only checked for spelling where remote workers resolve it."""
    device = device or matrix.device
    if scheduler is None and cluster is None:
        return str(resolve_device(device))
    check_device_spelling(device)
    return device


def run_matrix(matrix: MatrixConfig, out_dir: Path, workers: int = 2,
               executor: Executor = "local", scheduler: str | None = None,
               on_event: Callable[[str], None] | None = None, device: str | None = None,
               cluster: ClusterSpec | None = None) -> Path:
    """Build each task's dataset, train and evaluate every (model, seed), write the report.

    ``executor="local"`` trains runs one after another in this process; ``"dask"`` submits one
    task per run to an embedded LocalCluster (``workers`` processes, one torch thread each) or
    to ``scheduler``, whose workers must see ``out_dir`` (a shared filesystem), then evaluates
    here. Everything is cached: datasets resume, finished runs are skipped, results replaced.
    ``device`` (default: the matrix's ``device``) is where runs train and are evaluated;
    ``cluster`` puts the Dask executor's workers on GPUs (dask-cuda) or SLURM jobs
    (dask-jobqueue). Returns the results store path.
    """
    say = on_event or (lambda message: None)
    device = matrix_device(matrix, device, scheduler, cluster)
    check_cluster(cluster)
    out_dir = Path(out_dir).resolve()
    results = ResultsStore(out_dir / "results.db")
    planned = plan_matrix(matrix, out_dir, workers, scheduler, say)
    train_and_evaluate(planned, out_dir / "runs", results, executor, workers, scheduler, say,
                       device=device, cluster=cluster)
    client_device = device if scheduler is None and cluster is None else "auto"
    write_task_representations(results, out_dir / "representations", device=client_device)
    build_report(results.path, out_dir / "report", reference_archive=default_archive())
    return results.path
