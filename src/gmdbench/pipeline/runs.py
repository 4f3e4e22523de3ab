"""Train then evaluate a list of runs, locally or as Dask tasks: the loop that run matrices and
probe suites share.

Each run trains where it is executed and writes only its own run directory; evaluation and the
results store stay on the client, so a worker never writes the shared store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from dask.distributed import as_completed

from gmdbench.pipeline.clusters import ClusterSpec, cluster_client
from gmdbench.progress import ProgressLines
from gmdbench.runner.executor import evaluate_run, train_run
from gmdbench.runner.results import ResultsStore
from gmdbench.runner.runs import RunConfig

Executor = Literal["local", "dask"]


def _train_in_worker(run: RunConfig, data: Path, runs_root: Path, threads: int,
                     device: str) -> Path:
    """A Dask task: train one run with a bounded number of torch threads, on ``device`` as the
    worker sees it (a dask-cuda worker sees its one GPU as cuda:0)."""
    torch.set_num_threads(threads)
    return train_run(run, data, runs_root, device=device)


def train_and_evaluate(planned: list[tuple[RunConfig, Path]], runs_root: Path,
                       results: ResultsStore, executor: Executor = "local", workers: int = 2,
                       scheduler: str | None = None,
                       on_event: Callable[[str], None] | None = None,
                       reuse_evaluations: bool = False, device: str = "cpu",
                       cluster: ClusterSpec | None = None) -> dict[str, Path]:
    """Train (cached by run hash, resumable) and evaluate every (run, dataset); return the run
    directories by run id. ``local``: one after another here; ``dask``: one task per run on an
    embedded LocalCluster (``workers`` processes, one torch thread each) or on ``scheduler``
    (whose workers must see ``runs_root``). ``reuse_evaluations``: a run that already has its
    ``metrics.json`` is not evaluated again (probe suites, which only need the weights).
    ``device``: where each run trains and is evaluated (``auto``, ``cpu``, ``cuda[:N]``);
    ``cluster``: a GPU or SLURM cluster for the Dask executor (``pipeline/clusters.py``)."""
    say = on_event or (lambda message: None)
    run_dirs: dict[str, Path] = {}
    remote = scheduler is not None or (cluster is not None and cluster.kind == "slurm")
    # workers resolve the device where they run (a login node without a GPU must not decide
    # for GPU jobs); the client evaluates on what it has itself
    client_device = "auto" if remote else device
    if executor == "local":
        for run, data in planned:
            say(f"{run.regime} {run.model} seed {run.seed} on {run.task}")
            lines = ProgressLines(say, f"{run.model} seed {run.seed}", "epoch",
                                  run.training.epochs)
            run_dir = train_run(run, data, runs_root, device=device, on_epoch=lambda epoch, r,
                                lines=lines: lines.update(
                                    epoch + 1, val_force_MAE=f"{r['val_force_mae']:.4f}",
                                    lr=f"{r['learning_rate']:.2g}"))
            if not (reuse_evaluations and (run_dir / "metrics.json").exists()):
                evaluate_run(run_dir, results, device)
            run_dirs[run.run_id] = run_dir
        return run_dirs
    if cluster is not None and cluster.kind == "gpus":
        worker_device = "cuda"  # dask-cuda: each worker sees its own GPU as cuda:0
    elif cluster is not None and cluster.slurm is not None:
        worker_device = "cuda" if cluster.slurm.gpus_per_job else "cpu"
    else:
        worker_device = device
    with cluster_client(cluster, workers, scheduler, len(planned)) as client:
        futures = {client.submit(_train_in_worker, run, data, runs_root, 1, worker_device,
                                 pure=False, key=f"train-{run.run_id}"): run
                   for run, data in planned}
        say(f"submitted {len(futures)} runs to Dask")
        for future in as_completed(futures):
            run_dir = future.result()
            if not (reuse_evaluations and (run_dir / "metrics.json").exists()):
                evaluate_run(run_dir, results, client_device)
            run_dirs[futures[future].run_id] = run_dir
            say(f"evaluated {run_dir.name}")
    return run_dirs
