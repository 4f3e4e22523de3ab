"""Peak memory of a probe suite's evaluation, batched by frames only or by an edge budget.

Issue 27, item 12: the built-in cr_sb2te3 suite (84-atom periodic DFT frames) peaked at
12.2 GB RSS. This script builds the suite's stored dataset, then for each distinct model of
the suite (MACE scratch as configured, CHGNet and SevenNet-0 as shipped; a fine-tuned or refit
model has its base model's shape) and each edge budget, predicts id_test and ood_test in a
fresh process and prints that process's peak RSS (what the OS would kill), its RSS before
predicting, the largest batch in edges and the seconds taken. Weights are as built (scratch:
seeded initial weights): memory depends on the shapes, not the values. Predictions at every
budget are compared with those of the first: batching must not change a result.

Usage: python bench/eval_memory.py [--data ../shared/data/cr_sb2te3]
                                   [--budgets none,default,50000] [--models mace,sevennet]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB on Linux


def _current_gb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1024 ** 3


def child(data: Path, entry_json: str, budget: int | None, out: Path) -> None:
    """One model at one budget: build it as the harness does, predict both test splits."""
    from gmdbench.config import ModelEntry
    from gmdbench.data.store import DatasetStore
    from gmdbench.evaluation.evaluate import predict
    from gmdbench.models.base import DTYPES, default_dtype
    from gmdbench.runner.runs import build_potential, graph_cutoff, load_splits, run_config

    entry = ModelEntry.model_validate_json(entry_json)
    store = DatasetStore(data)
    run = run_config(entry, "eval-memory", entry.seed, store.content_hash())
    dtype = DTYPES[run.training.dtype]
    with default_dtype(dtype), tempfile.TemporaryDirectory() as run_dir:
        splits = load_splits(store, graph_cutoff(run), ("train", "id_test", "ood_test"), run)
        potential = build_potential(run, splits["train"][0],
                                    store.metadata.get("isolated_atom_energies"), Path(run_dir))
        potential.to(dtype)
        before = _current_gb()
        peak_before = _peak_gb()
        started = time.perf_counter()
        result = {"rss_before_gb": before, "peak_before_gb": peak_before, "splits": {}}
        for split in ("id_test", "ood_test"):
            graphs, keys = splits[split]
            sizes = [int(graphs.n_edges[index].sum()) for index in graphs._batch_indices(
                np.arange(len(graphs)), 32, budget)]
            predictions = predict(potential, graphs, keys, dtype=dtype,
                                  max_edges=budget if budget is not None else 10 ** 18)
            np.savez(out / f"{split}.npz", energy=predictions.energy, forces=predictions.forces)
            result["splits"][split] = {"frames": len(graphs), "batches": len(sizes),
                                       "largest_batch_edges": max(sizes)}
        result["seconds"] = time.perf_counter() - started
        result["peak_gb"] = _peak_gb()
    (out / "memory.json").write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/cr_sb2te3")
    parser.add_argument("--budgets", default="none,default",
                        help="edge budgets: a number, 'default' (GMD_EVAL_MAX_EDGES or the "
                        "built-in default) or 'none' (frames only, 32 per batch)")
    parser.add_argument("--models", default="", help="model names to keep (default: all)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        data, entry, budget, out = args.child
        child(Path(data), entry, None if budget == "none" else int(budget), Path(out))
        return

    from gmdbench.data.graphs import evaluation_edge_budget
    from gmdbench.data.store import DatasetStore
    from gmdbench.pipeline.suites import training_dataset
    from gmdbench.probes.suite import load_suite

    suite, _ = load_suite("cr_sb2te3")
    work = ROOT / "results" / "eval-memory"
    data = training_dataset(suite, args.data, work)
    store = DatasetStore(data)
    print(f"dataset {data.name}: {store.count()} frames")
    keep = {name for name in args.models.split(",") if name}
    entries, seen = [], set()
    for entry in suite.models:  # one entry per distinct network shape
        if entry.regime.startswith(("zero-shot-refit", "fine-tune")):
            continue
        if (keep and entry.name not in keep) or entry.name in seen:
            continue
        seen.add(entry.name)
        entries.append(entry)
    budgets = [str(evaluation_edge_budget()) if b.strip() == "default" else b.strip()
               for b in args.budgets.split(",") if b.strip()]
    print(f"{'model':<10}{'budget':>10}{'largest batch':>15}{'batches':>9}{'RSS before':>12}"
          f"{'peak RSS':>10}{'seconds':>9}{'max |dF|':>10}")
    for entry in entries:
        first: dict | None = None
        for budget in budgets:
            out = work / f"{entry.name}-{budget}"
            out.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, __file__, "--child", str(data),
                            entry.model_dump_json(), budget, str(out)], check=True)
            result = json.loads((out / "memory.json").read_text())
            forces = np.concatenate([np.load(out / f"{s}.npz")["forces"].ravel()
                                     for s in ("id_test", "ood_test")])
            first = forces if first is None else first
            largest = max(s["largest_batch_edges"] for s in result["splits"].values())
            batches = sum(s["batches"] for s in result["splits"].values())
            print(f"{entry.name:<10}{budget:>10}{largest:>15,}{batches:>9}"
                  f"{result['rss_before_gb']:>10.2f}GB{result['peak_gb']:>8.2f}GB"
                  f"{result['seconds']:>9.1f}{float(np.max(np.abs(forces - first))):>10.1e}",
                  flush=True)


if __name__ == "__main__":
    main()
