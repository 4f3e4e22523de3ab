"""Labelling throughput of the dataset pipeline against raw tblite calls on the same geometries.

Prints, for MD strides 1 and 5 (the quick preset's), two ratios (goals in brackets):
  pipeline / raw           reference calls per second of the pipeline (1 worker) over raw,
                           back-to-back tblite calls on the stored geometries       [>= 0.95]
  speed-up 1 -> 2 workers  labelled frames per second with 2 workers over 1         [>= 1.8]

The pipeline makes exactly ``stride`` reference calls per saved frame (no equilibration here),
so reference calls per second = frames per second x stride; at stride 1 every call is a saved
label and the comparison is call for call on the very same geometries. Raw calls use a fresh
TBLite calculator per geometry, as the pipeline's labels do, in one process with one thread.
The Dask cluster is started before the clock starts (its start-up, about 1 s, is printed).
Each timing is the best of ``--repeats`` runs: shared machines are noisy (raw tblite rates vary
by 30% between identical runs here), and the minimum is the least disturbed estimate.

Usage: python bench/label_overhead.py [--task fragment_duplication] [--frames 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def preset_for(stride: int, frames: int):
    from gmdbench.config import PresetConfig, SamplerConfig, TrajectoriesPerRole

    return PresetConfig(
        name=f"bench-stride{stride}",
        trajectories=TrajectoriesPerRole(train=1, val=1, id_test=1, ood_test=1),
        sampler=SamplerConfig(equilibration_steps=0, stride=stride, frames_per_trajectory=frames),
    )


def timed_build(task, preset, out: Path, workers: int) -> tuple[int, float, float]:
    """Frames written, seconds labelling, seconds to start and stop the cluster."""
    from gmdbench.data.generate import build_dataset, dask_client
    from gmdbench.reference.registry import ReferenceConfig

    started = time.perf_counter()
    with dask_client(workers, None) as client:
        client.wait_for_workers(workers)
        ready = time.perf_counter()
        report = build_dataset(task, preset, ReferenceConfig(), seed=0, out=out,
                               scheduler=client.scheduler.address)
        labelled = time.perf_counter()
    stopped = time.perf_counter()
    return report.frames_written, labelled - ready, (ready - started) + (stopped - labelled)


def raw_seconds(path: Path) -> tuple[int, float]:
    from ase import Atoms
    from tblite.ase import TBLite

    from gmdbench.data.store import DatasetStore

    geometries = [(row.numbers, row.positions) for row in DatasetStore(path).rows()]
    started = time.perf_counter()
    for numbers, positions in geometries:
        atoms = Atoms(numbers=numbers, positions=positions)
        atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
        atoms.get_potential_energy()
        atoms.get_forces()
    return len(geometries), time.perf_counter() - started


def main() -> None:
    from gmdbench.tasks.spec import load_task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fragment_duplication")
    parser.add_argument("--frames", type=int, default=40, help="frames per trajectory")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    task = load_task(args.task)
    print(f"task {task.name}, {os.cpu_count()} cores, frames per trajectory {args.frames}")
    with tempfile.TemporaryDirectory() as tmp:
        for stride in (1, 5):
            preset = preset_for(stride, args.frames)
            runs_1, runs_raw, runs_2 = [], [], []
            for repeat in range(args.repeats):
                one = Path(tmp) / f"one-{stride}-{repeat}.db"
                runs_1.append(timed_build(task, preset, one, workers=1))
                runs_raw.append(raw_seconds(one))
                runs_2.append(timed_build(task, preset, Path(tmp) / f"two-{stride}-{repeat}.db",
                                          workers=2))
            frames_1, seconds_1, cluster_1 = min(runs_1, key=lambda run: run[1])
            n_raw, raw = min(runs_raw, key=lambda run: run[1])
            frames_2, seconds_2, _ = min(runs_2, key=lambda run: run[1])
            raw_calls_per_s = n_raw / raw
            print(f"stride {stride}: raw tblite {raw_calls_per_s:.1f} calls/s on {n_raw} stored "
                  f"geometries; cluster start+stop {cluster_1:.1f} s")
            for workers, frames, seconds in ((1, frames_1, seconds_1), (2, frames_2, seconds_2)):
                print(f"  pipeline, {workers} worker(s): {frames} frames in {seconds:.2f} s = "
                      f"{frames / seconds:.1f} frames/s = {frames * stride / seconds:.1f} calls/s")
            ratio = frames_1 * stride / seconds_1 / raw_calls_per_s
            print(f"  ratio pipeline/raw (1 worker):  {ratio:.3f}   [goal >= 0.95]")
            print(f"  speed-up 1 -> 2 workers:        {seconds_1 / seconds_2:.2f}    "
                  "[goal >= 1.8]")


if __name__ == "__main__":
    main()
