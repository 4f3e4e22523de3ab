"""GPU check: MACE and SchNet trained for a few epochs on cuda and on cpu with the same seed.

Prints, per model: structures/s trained on each device and the GPU/CPU ratio, and whether the
two devices' metrics agree to float32 tolerance (relative difference of the force and energy
MAE on id_test and ood_test below ``--tolerance``). Writes the measured rates to ``--rates``
(``bench/gpu_rates.json`` by default), which ``bench/run_cost.py`` turns into a GPU estimate.

Runs on a CPU-only machine with ``--skip-cuda`` (the cpu half, same code path). On the lent
GPU machine (Python 3.12, a CUDA torch, e3nn; no ase, pydantic, mace-torch, fairchem), carry
the wheels ``scripts/device_wheels.sh`` downloads and the quick dataset, then:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \\
      && PYTHONPATH=/tmp/site:src python3 bench/gpu_check.py --data .gpu/quick.db

Usage: python bench/gpu_check.py [--data DB] [--epochs 3] [--skip-cuda] [--models schnet,mace]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from gmdbench.config import TrainConfig, load_preset
from gmdbench.data.generate import build_dataset
from gmdbench.data.store import DatasetStore
from gmdbench.models.registry import model_config
from gmdbench.reference.registry import ReferenceConfig
from gmdbench.runner.executor import evaluate_run, train_run
from gmdbench.runner.results import ResultsStore
from gmdbench.runner.runs import RunConfig
from gmdbench.tasks.spec import load_task

QUICK_DATA = Path("results/quick/datasets/fragment_duplication-quick-seed0.db")
COMPARED = ("force_mae", "energy_mae")


def measure(model: str, data: Path, device: str, epochs: int, root: Path) -> dict:
    """Train and evaluate one run; structures/s over the training epochs, and the metrics."""
    store = DatasetStore(data)
    options = model_config(model, size="small").model_dump(exclude={"name"})
    run = RunConfig(task="fragment_duplication", model=model, model_options=options,
                    training=TrainConfig(epochs=epochs, batch_size=8,
                                         early_stopping_patience=None),
                    seed=0, dataset_hash=store.content_hash())
    ends: list[float] = []
    started = time.perf_counter()
    run_dir = train_run(run, data, root / device, on_epoch=lambda e, r: ends.append(
        time.perf_counter()), device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    n_train = sum(1 for _ in store.rows(split="train"))
    # the first epoch carries start-up (graphs, CUDA context, kernels): rates from the rest
    seconds = ends[-1] - ends[0] if len(ends) > 1 else time.perf_counter() - started
    frames = n_train * (len(ends) - 1 if len(ends) > 1 else 1)
    metrics = evaluate_run(run_dir, ResultsStore(root / device / "results.db"), device)
    return {"structures_per_second": frames / seconds,
            "metrics": {split: {name: metrics[split]["all"][name] for name in COMPARED}
                        for split in ("id_test", "ood_test")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=QUICK_DATA)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", default="schnet,mace")
    parser.add_argument("--skip-cuda", action="store_true", help="the cpu half only")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="relative difference of metrics counted as float32 agreement")
    parser.add_argument("--rates", type=Path, default=Path("bench/gpu_rates.json"))
    args = parser.parse_args()
    if not args.data.exists():
        build_dataset(load_task("fragment_duplication"), load_preset("quick"), ReferenceConfig(),
                      0, args.data, workers=2)
    devices = ["cpu"] if args.skip_cuda else ["cuda", "cpu"]
    if "cuda" in devices and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: run with --skip-cuda, or on the GPU machine")
    name = torch.cuda.get_device_name(0) if "cuda" in devices else "cpu only"
    print(f"torch {torch.__version__}; {name}; {args.epochs} epochs; data {args.data}")
    rates: dict[str, dict] = {}
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            results = {device: measure(model, args.data, device, args.epochs,
                                       Path(tmp) / model) for device in devices}
            line = f"{model:8s} " + "  ".join(
                f"{device} {r['structures_per_second']:8.1f} structures/s"
                for device, r in results.items())
            rates[model] = {f"structures_per_second_{d}": r["structures_per_second"]
                            for d, r in results.items()}
            if "cuda" in results:
                ratio = results["cuda"]["structures_per_second"] / results["cpu"][
                    "structures_per_second"]
                worst = max(abs(results["cuda"]["metrics"][s][m] - results["cpu"]["metrics"][s][m])
                            / abs(results["cpu"]["metrics"][s][m])
                            for s in ("id_test", "ood_test") for m in COMPARED)
                agree = worst < args.tolerance
                failed |= not agree
                line += (f"  GPU/CPU {ratio:6.1f}x  metrics {'agree' if agree else 'DIFFER'} "
                         f"(worst relative difference {worst:.1e})")
                rates[model].update(gpu_cpu_ratio=ratio, gpu=name)
            print(line, flush=True)
    if not args.skip_cuda:
        args.rates.write_text(json.dumps({"measured": time.strftime("%Y-%m-%d"),
                                          "epochs": args.epochs, "models": rates}, indent=2))
        print(f"rates written to {args.rates}")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
