"""The routing section of a report: one row per DeepSet-MoE run and split, and its atom plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gmdbench.runner.results import ResultsStore


def _fmt(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def write_routing(results: ResultsStore, out_dir: Path) -> list[Path]:
    """``routing.md`` and a copy of each run's ``routing_atoms.png``; nothing without MoE runs."""
    lines = ["# DeepSet-MoE routing\n",
             "Expert load: share of edges per expert. Entropies and mutual information in bits; "
             "MI pairs each edge's expert with its central atom's fragment (task SMARTS; H "
             "atoms take their heavy atom's), atom-level MI each atom's dominant expert. "
             "Energy share: integrated gradients of the energy over per-expert message scales, "
             "normalised by the sum of their absolute values (signed).\n",
             "| task | variant | seed | split | load entropy (max) | MI edge | MI atom | "
             "fragment entropy | expert load | energy share |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    written = []
    for run in results.runs():
        routing_file = Path(run["run_dir"]) / "routing.json"
        if not routing_file.exists():
            continue
        routing = json.loads(routing_file.read_text())
        variant = run["model_metadata"].get("variant") or run["model"]
        for split in ("id_test", "ood_test"):
            r = routing[split]
            lines.append(
                f"| {run['task']} | {variant} | {run['seed']} | {split} | "
                f"{r['load_entropy_bits']:.2f} ({r['max_load_entropy_bits']:.2f}) | "
                f"{r['mi_expert_fragment_bits']:.2f} | {r['mi_atom_expert_fragment_bits']:.2f} | "
                f"{r['fragment_entropy_bits']:.2f} | {_fmt(r['expert_load_edges'])} | "
                f"{_fmt(r['expert_energy_share'])} |")
        picture = Path(run["run_dir"]) / "routing_atoms.png"
        if picture.exists():
            name = f"routing_{run['task']}_{variant.replace(', ', '_').replace('=', '')}" \
                   f"_s{run['seed']}.png"
            shutil.copyfile(picture, out_dir / name)
            written.append(out_dir / name)
    if len(lines) == 4:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "routing.md").write_text("\n".join(lines) + "\n")
    return [out_dir / "routing.md", *written]
