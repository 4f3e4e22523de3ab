"""Where a run matrix's Dask tasks run: an embedded LocalCluster (or an existing scheduler),
one worker per GPU with dask-cuda's ``LocalCUDACluster``, or SLURM jobs through dask-jobqueue's
``SLURMCluster``. Every kind hands the same Dask client to the same code (``pipeline/runs.py``);
none is a scheduler of our own.

dask-cuda and dask-jobqueue are optional (``pip install 'gmd-bench[gpu]'`` /
``'gmd-bench[slurm]'``), imported only when asked for; a CPU user installs neither.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from dask.distributed import Client
from pydantic import ValidationError

from gmdbench.config import SlurmClusterConfig, format_validation_error, load_yaml
from gmdbench.data.generate import QUIET_SCHEDULER_OPTIONS, dask_client
from gmdbench.errors import ClusterError, DeviceError


@dataclass(frozen=True)
class ClusterSpec:
    """``kind``: ``gpus`` (dask-cuda, ``gpus`` workers) or ``slurm`` (dask-jobqueue)."""

    kind: Literal["gpus", "slurm"]
    gpus: int = 0
    slurm: SlurmClusterConfig | None = None


def load_slurm_config(path: Path) -> SlurmClusterConfig:
    """The validated ``--cluster-config`` YAML (one line naming the file and key on error)."""
    if not Path(path).is_file():
        raise ClusterError(f"cluster config {path} does not exist")
    try:
        return SlurmClusterConfig.model_validate(load_yaml(Path(path), "cluster config") or {})
    except ValidationError as error:
        raise ClusterError(format_validation_error(error, f"cluster config {path}",
                                                   SlurmClusterConfig)) from error


def slurm_options(config: SlurmClusterConfig) -> dict:
    """SLURMCluster keyword arguments for a config (``--gres=gpu:N`` when GPUs are asked)."""
    directives = list(config.job_directives)
    threads = config.cores
    if config.gpus_per_job:  # one Dask thread (one training at a time) per GPU job
        directives.append(f"--gres=gpu:{config.gpus_per_job}")
        threads = config.gpus_per_job
    options = {"cores": threads, "job_cpu": config.cores, "memory": config.memory,
               "walltime": config.walltime, "processes": config.processes,
               "queue": config.queue,
               "account": config.account, "job_extra_directives": directives,
               "job_script_prologue": list(config.job_script_prologue),
               "local_directory": config.local_directory, "python": config.python,
               "scheduler_options": dict(QUIET_SCHEDULER_OPTIONS)}
    return {key: value for key, value in options.items() if value is not None}


def _slurm_cluster(config: SlurmClusterConfig):
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as error:
        raise ClusterError("--cluster slurm needs dask-jobqueue: pip install "
                           "'gmd-bench[slurm]'") from error
    return SLURMCluster(**slurm_options(config))


def slurm_job_script(config: SlurmClusterConfig) -> str:
    """The batch script dask-jobqueue would submit for one job (``SLURMCluster.job_script``)."""
    cluster = _slurm_cluster(config)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def slurm_available() -> bool:
    return shutil.which("sbatch") is not None


def check_gpus(gpus: int) -> None:
    """Refuse, before any work, more GPUs than this machine has."""
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus > have:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceError(f"--gpus {gpus} requested but torch {torch.__version__} ({build}) sees "
                          f"{have} CUDA GPU(s) on this machine")


def check_cluster(cluster: ClusterSpec | None) -> None:
    """Refuse, before any dataset is built, a cluster this machine cannot give."""
    if cluster is None:
        return
    if cluster.kind == "gpus":
        check_gpus(cluster.gpus)
    elif not slurm_available():
        raise ClusterError("--cluster slurm: no sbatch on this machine's PATH (SLURM is not "
                           "reachable from here); add --dry-run to see the job script")


@contextmanager
def cluster_client(cluster: ClusterSpec | None, workers: int, scheduler: str | None,
                   n_runs: int) -> Iterator[Client]:
    """A Dask client of the asked-for cluster, closed (and its jobs cancelled) on exit."""
    if cluster is None:
        with dask_client(workers, scheduler) as client:
            yield client
        return
    if cluster.kind == "gpus":
        check_gpus(cluster.gpus)
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError as error:
            raise ClusterError("--gpus needs dask-cuda: pip install 'gmd-bench[gpu]'"
                               ) from error
        local = LocalCUDACluster(n_workers=cluster.gpus, threads_per_worker=1,
                                 CUDA_VISIBLE_DEVICES=list(range(cluster.gpus)),
                                 dashboard_address=None,
                                 scheduler_kwargs=QUIET_SCHEDULER_OPTIONS)
    else:
        check_cluster(cluster)
        local = _slurm_cluster(cluster.slurm)
        local.scale(jobs=min(n_runs, cluster.slurm.max_jobs))
    client = Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()
