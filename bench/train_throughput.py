"""Training and inference throughput of gmd-bench's harness against mace-torch's own tools.

Prints two ratios (goals in brackets):
  training   structures/s of `gmd train` over `mace_run_train` (same MACE size, data,
             batch size, precision, validation every epoch)                       [>= 1.0]
  inference  structures/s of our batched prediction over mace-torch's per-structure
             ASE calculator (MACECalculator) on the same frames                   [>= 5]

Like for like: both train the same network (mace-torch's ScaleShiftMACE with
RealAgnosticResidualInteractionBlock first and after, as gmd-bench builds it: the parameter
counts are printed and must match), with an EMA of the weights (decay 0.99), float32, the same
batch size and learning rate, validation every epoch, and the same number of torch threads
(``--threads``, set through OMP_NUM_THREADS / MKL_NUM_THREADS for both processes).

Training rates come from the difference between a 1-epoch and a (1 + K)-epoch run of each
tool, so start-up (imports, data loading, statistics) cancels out. The two tools run in pairs,
one after the other (so both see the same load on the machine), ``--repeats`` times; the
printed training ratio is the median of the paired ratios.

Usage: python bench/train_throughput.py [--data PATH] [--epochs 10] [--repeats 3] [--threads 1]
       (default data: the quick fragment_duplication dataset, built if missing)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np

MACE = {"hidden_irreps": "16x0e + 16x1o", "mlp_irreps": "16x0e", "num_interactions": 2,
        "correlation": 2, "radial_mlp": [16, 16], "r_max": 5.0, "num_bessel": 8,
        "num_polynomial_cutoff": 5, "max_ell": 2}
BATCH = 8


def export_split(data: Path, split: str, out: Path) -> int:
    """Frames of a split as extxyz with mace's default REF_energy / REF_forces keys."""
    from gmdbench.data.store import DatasetStore

    store = DatasetStore(data)
    frames = []
    for row in store.rows(split=split):
        atoms = row.toatoms()
        atoms.calc = None
        atoms.info["REF_energy"] = float(row.energy)
        atoms.arrays["REF_forces"] = np.array(row.forces)
        frames.append(atoms)
    ase.io.write(out, frames, format="extxyz")
    return len(frames)


def timed(command: list[str], threads: int) -> float:
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads),
                   "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=environment)
    return time.perf_counter() - started


def mace_command(work: Path, epochs: int, name: str) -> list[str]:
    return [
        str(Path(sys.executable).with_name("mace_run_train")), "--name", name,
        "--work_dir", str(work), "--train_file", str(work / "train.xyz"),
        "--valid_file", str(work / "val.xyz"), "--model", "ScaleShiftMACE",
        "--interaction_first", "RealAgnosticResidualInteractionBlock",
        "--interaction", "RealAgnosticResidualInteractionBlock", "--ema", "--ema_decay", "0.99",
        "--hidden_irreps", MACE["hidden_irreps"], "--MLP_irreps", MACE["mlp_irreps"],
        "--radial_MLP", str(MACE["radial_mlp"]), "--num_interactions",
        str(MACE["num_interactions"]), "--correlation", str(MACE["correlation"]),
        "--max_ell", str(MACE["max_ell"]), "--r_max", str(MACE["r_max"]),
        "--num_radial_basis", str(MACE["num_bessel"]), "--num_cutoff_basis",
        str(MACE["num_polynomial_cutoff"]), "--E0s", "average", "--loss", "weighted",
        "--batch_size", str(BATCH), "--valid_batch_size", str(BATCH),
        "--max_num_epochs", str(epochs), "--eval_interval", "1", "--default_dtype", "float32",
        "--device", "cpu", "--seed", "0", "--lr", "0.01",
    ]


def gmd_command(data: Path, work: Path, epochs: int, repeat: int) -> list[str]:
    """A fresh run directory per repeat, so no repeat is a cache hit."""
    config = work / f"gmd-{epochs}.yaml"
    options = ", ".join(f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}"
                        for k, v in MACE.items())
    config.write_text(f"model: {{{options}}}\n"
                      f"training: {{epochs: {epochs}, batch_size: {BATCH}, dtype: float32, "
                      f"learning_rate: 0.01, early_stopping_patience: null}}\n")
    return [sys.executable, "-m", "gmdbench.cli", "train", "--task", "fragment_duplication",
            "--model", "mace", "--data", str(data), "--config", str(config), "--runs",
            str(work / f"runs-{epochs}-{repeat}"), "--device", "cpu"]


def inference(data: Path, run_dir: Path, mace_model: Path) -> tuple[int, float, float]:
    """Structures, seconds batched (ours, graph building included), seconds per-structure.

    Both start from the same ase.Atoms already in memory (reading the database is excluded).
    """
    import torch
    from mace.calculators import MACECalculator

    from gmdbench.data.graphs import GraphSet
    from gmdbench.data.store import DatasetStore
    from gmdbench.evaluation.evaluate import predict
    from gmdbench.runner.runs import load_potential

    rows = [row for split in ("id_test", "ood_test")
            for row in DatasetStore(data).rows(split=split)]
    frames = [row.toatoms() for row in rows]
    for atoms in frames:
        atoms.calc = None
    keys = [dict(row.key_value_pairs) for row in rows]
    energies = [row.energy for row in rows]
    forces = [row.forces for row in rows]
    potential = load_potential(run_dir)
    started = time.perf_counter()
    graphs = GraphSet(frames, MACE["r_max"], energies=energies, forces=forces)
    predict(potential, graphs, keys, batch_size=64, dtype=torch.float32)
    ours = time.perf_counter() - started

    calculator = MACECalculator(model_paths=str(mace_model), device="cpu",
                                default_dtype="float32")
    started = time.perf_counter()
    for atoms in frames:
        atoms.calc = calculator
        atoms.get_potential_energy()
        atoms.get_forces()
    theirs = time.perf_counter() - started
    return len(frames), ours, theirs


def parameters(run_dir: Path, mace_model: Path) -> tuple[int, int]:
    """Trainable parameters of our MACE network and of mace_run_train's model."""
    import torch

    from gmdbench.runner.runs import load_potential

    ours = sum(p.numel() for p in load_potential(run_dir).network.parameters())
    theirs = sum(p.numel() for p in torch.load(mace_model, weights_only=False).parameters())
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("datasets/fragment_duplication-quick.db"))
    parser.add_argument("--epochs", type=int, default=10, help="K extra epochs timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of both tools")
    args = parser.parse_args()
    if not args.data.exists():
        subprocess.run([sys.executable, "-m", "gmdbench.cli", "data", "build",
                        "fragment_duplication", "--preset", "quick", "--out", str(args.data)],
                       check=True)
    k, threads = args.epochs, args.threads
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        n_train = export_split(args.data, "train", work / "train.xyz")
        export_split(args.data, "val", work / "val.xyz")
        pairs = []
        for repeat in range(args.repeats):  # each pair under the same load
            # fresh names each time on both sides: no run reuses another's files
            mace_short = timed(mace_command(work, 1, f"short{repeat}"), threads)
            ours_short = timed(gmd_command(args.data, work, 1, repeat), threads)
            mace_long = timed(mace_command(work, 1 + k, f"long{repeat}"), threads)
            ours_long = timed(gmd_command(args.data, work, 1 + k, repeat), threads)
            mace_rate = n_train * k / (mace_long - mace_short)
            ours_rate = n_train * k / (ours_long - ours_short)
            pairs.append((ours_rate, mace_rate))
            print(f"  pair {repeat}: gmd {ours_rate:7.1f}, mace_run_train {mace_rate:7.1f} "
                  f"structures/s, ratio {ours_rate / mace_rate:.2f}", flush=True)
        run_dir = next((work / f"runs-{1 + k}-0").iterdir())
        ours_parameters, mace_parameters = parameters(run_dir, work / "long0.model")
        n_eval, ours_eval, mace_eval = inference(args.data, run_dir, work / "long0.model")

    ratios = [ours / theirs for ours, theirs in pairs]
    print(f"data {args.data}: {n_train} training structures, ScaleShiftMACE "
          f"{MACE['hidden_irreps']} (parameters: ours {ours_parameters}, mace_run_train "
          f"{mace_parameters}), batch {BATCH}, float32, EMA, {threads} thread(s), {k} epochs")
    print(f"ratio training (gmd / mace_run_train), median of {len(ratios)} pairs: "
          f"{statistics.median(ratios):.2f} (pairs {', '.join(f'{r:.2f}' for r in ratios)})"
          "   [goal >= 1.0]")
    print(f"  inference on {n_eval} structures: batched {n_eval / ours_eval:.1f} structures/s, "
          f"MACECalculator {n_eval / mace_eval:.1f} structures/s")
    print(f"ratio inference (batched / per-structure calculator): {mace_eval / ours_eval:.2f}"
          "   [goal >= 5]")


if __name__ == "__main__":
    main()
