"""The active-learning report: OOD force MAE against added labels, one curve per rule (mean and
std over seeds), and the labels each rule needs to bring OOD error within the target multiple
of ID error. Reads the loop's saved curve points; computes nothing from models."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from gmdbench.files import write_text
from gmdbench.report.html import write_html
from gmdbench.report.uncertainty import write_uncertainty


def aggregate(curve: list[dict]) -> dict[str, list[dict]]:
    """Per rule, per round: labels, mean and std over seeds of ID and OOD force MAE."""
    grouped: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for point in curve:
        grouped[point["rule"]][point["round"]].append(point)
    result = {}
    for rule, rounds in grouped.items():
        rows = []
        for round_index in sorted(rounds):
            points = rounds[round_index]
            ood = np.array([p["ood_force_mae"] for p in points])
            iid = np.array([p["id_force_mae"] for p in points])
            ratio = ood / iid
            rows.append({"round": round_index, "labels": points[0]["labels"],
                         "seeds": len(points), "ood_mean": float(ood.mean()),
                         "ood_std": float(ood.std(ddof=1)) if len(ood) > 1 else 0.0,
                         "id_mean": float(iid.mean()),
                         "id_std": float(iid.std(ddof=1)) if len(iid) > 1 else 0.0,
                         "ratio_mean": float(ratio.mean())})
        result[rule] = rows
    return result


def labels_to_target(rows: list[dict], target: float) -> int | None:
    """The fewest added labels at which the seeds' mean OOD/ID force-MAE ratio is within
    ``target``; None if no round reached it."""
    return next((row["labels"] for row in rows if row["ratio_mean"] <= target), None)


def plot_curves(aggregated: dict[str, list[dict]], title: str, out: Path,
                target: float | None = None) -> Path:
    figure, (ood_axis, ratio_axis) = plt.subplots(1, 2, figsize=(11, 4.3))
    for rule, rows in sorted(aggregated.items()):
        labels = [row["labels"] for row in rows]
        ood_axis.errorbar(labels, [row["ood_mean"] for row in rows],
                          yerr=[row["ood_std"] for row in rows], marker="o", capsize=3,
                          label=rule)
        ratio_axis.plot(labels, [row["ratio_mean"] for row in rows], marker="o", label=rule)
    first = next(iter(aggregated.values()))
    ood_axis.axhline(first[0]["id_mean"], color="black", linestyle=":", linewidth=0.8,
                     label="ID error, round 0")
    if target is not None:
        ratio_axis.axhline(target, color="black", linestyle="--", linewidth=0.8,
                           label=f"target {target:g}x")
    ood_axis.set_xlabel("labels added from the OOD pool")
    ood_axis.set_ylabel("OOD force MAE (eV/A), mean ± std over seeds")
    ratio_axis.set_xlabel("labels added from the OOD pool")
    ratio_axis.set_ylabel("OOD / ID force MAE (mean over seeds)")
    for axis in (ood_axis, ratio_axis):
        axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def write_active_learning_report(curve: list[dict], config: dict, out_dir: Path) -> Path:
    """active_learning.json (the aggregated curves, labels to target) and report/ (markdown,
    plots, the round-0 uncertainty tables, index.html); returns the json path."""
    aggregated = aggregate(curve)
    target = config["target_ratio"]
    ratios = [target, *sorted(set(config.get("other_ratios", [])) - {target}, reverse=True)]
    summary = {"config": config, "target_ratio": target, "curves": aggregated,
               "labels_to_target": {rule: labels_to_target(rows, target)
                                    for rule, rows in aggregated.items()},
               "labels_to_ratio": {f"{ratio:g}": {rule: labels_to_target(rows, ratio)
                                                  for rule, rows in aggregated.items()}
                                   for ratio in ratios}}
    path = out_dir / "active_learning.json"
    write_text(path, json.dumps(summary, indent=2))
    report = out_dir / "report"
    report.mkdir(parents=True, exist_ok=True)
    model = config["model"]
    plot_curves(aggregated, f"{model['name']} on {Path(config['task']).stem} "
                f"({Path(config['preset']).stem}): "
                f"{config['batch']} labels per round, update {config['update']}",
                report / "active_learning.png", target=target)
    most = config["rounds"] * config["batch"]
    lines = [f"# Active learning: {config['name']}\n",
             f"{model['name']} on {Path(config['task']).stem} ({Path(config['preset']).stem} "
             "preset); pool: OOD "
             f"molecules' MD frames from data seed {config['data_seed']} + "
             f"{config['pool']['seed_offset']}, labelled by {config['reference']} when picked; "
             f"OOD test set fixed (never in the pool); seeds "
             f"{', '.join(map(str, config['seeds']))}.\n",
             f"Target: OOD force MAE within {target:g}x the ID force MAE of the same round "
             "(mean over seeds of each seed's ratio); labels to reach it and, below it, "
             f"stricter ratios ({', '.join(f'{r:g}x' for r in ratios[1:])}), since the target "
             "can already hold before any label is added.\n",
             "| Rule | " + " | ".join(f"Labels to {r:g}x" for r in ratios) + " |",
             "|---|" + "---|" * len(ratios)]
    for rule in sorted(aggregated):
        cells = [rule]
        for ratio in ratios:
            reached = summary["labels_to_ratio"][f"{ratio:g}"][rule]
            cells.append(f"not within {most}" if reached is None else str(reached))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| Rule | " + " | ".join(
        f"OOD MAE at {row['labels']}" for row in next(iter(aggregated.values()))) + " |",
        "|---|" + "---|" * len(next(iter(aggregated.values())))]
    for rule, rows in sorted(aggregated.items()):
        cells = [rule] + [f"{row['ood_mean']:.4f} ± {row['ood_std']:.4f} "
                          f"({row['ratio_mean']:.2f}x)" for row in rows]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Cells: OOD force MAE (eV/A) mean ± std over seeds (OOD/ID ratio).", "",
              "![curves](active_learning.png)", ""]
    (report / "active_learning.md").write_text("\n".join(lines))
    write_uncertainty(out_dir / "uncertainty", report)
    for png in sorted((out_dir / "uncertainty").glob("*/uncertainty.png")):
        (report / f"uncertainty_{png.parent.name}.png").write_bytes(png.read_bytes())
    write_html(report, title=f"gmd-bench active learning: {config['name']}")
    return path
