"""Uncertainty figures and the report's table: which signal ranks OOD failures best.

Reads what ``gmd uncertainty`` saved (``uncertainty/*/uncertainty.json``); computes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

COLOURS = {"id_test": "tab:blue", "ood_test": "tab:red"}
LABELS = {"id_test": "ID", "ood_test": "OOD"}


def plot_uncertainty(frames: dict, summary: dict, signals: dict[str, str], out: Path) -> Path:
    """One panel per signal: each test frame's force error against the signal (faint), and the
    mean error in equal-count bins (markers, with the bin's frame count), ID and OOD."""
    figure, axes = plt.subplots(1, len(signals), figsize=(4.6 * len(signals), 4.2),
                                squeeze=False)
    for axis, (name, title) in zip(axes[0], signals.items(), strict=True):
        for split, data in frames.items():
            axis.scatter(data[name], data["force_mae"], s=4, alpha=0.25, color=COLOURS[split])
            binned = summary["splits"][split]["signals"][name]
            rho = binned["spearman"]
            xs = [b["signal"] for b in binned["binned"]]
            ys = [b["error"] for b in binned["binned"]]
            axis.plot(xs, ys, "o-", color=COLOURS[split], label=f"{LABELS[split]} (Spearman "
                      f"{'-' if rho is None else f'{rho:.2f}'})")
            for x, y, b in zip(xs, ys, binned["binned"], strict=True):
                axis.annotate(str(b["count"]), (x, y), fontsize=6, xytext=(2, 3),
                              textcoords="offset points")
        axis.set_xlabel(title)
        axis.set_ylabel("force MAE of the ensemble mean (eV/A)")
        if all(np.all(np.asarray(data[name]) > 0) for data in frames.values()):
            axis.set_xscale("log")
        axis.legend(fontsize=7)
    figure.suptitle(f"{summary['model']} ({summary['regime']}) on {summary['task']}, seeds "
                    f"{', '.join(map(str, summary['seeds']))}: error against uncertainty "
                    "(numbers: frames per bin)", fontsize=9)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def write_uncertainty(folder: Path, out_dir: Path) -> list[Path]:
    """uncertainty.md: per task, each configuration's Spearman of every signal with the force
    error (ID and OOD), ENCE and coverage, and the signal that ranks OOD failures best."""
    saved = sorted(Path(folder).glob("*/uncertainty.json"))
    if not saved:
        return []
    summaries = [json.loads(path.read_text()) for path in saved]
    lines = ["# Uncertainty: does a model know when it is out of distribution?\n",
             "Signals: the spread of the seeds' predictions (a deep ensemble, no extra "
             "training) and the SOAP distance from the train split; each scored by its "
             "Spearman rank correlation with the ensemble-mean force MAE per test frame. "
             "ENCE: expected normalised calibration error of the ensemble's force sigmas (0 = "
             "calibrated); within 1/2 sigma: fraction of force components inside the "
             "predicted sigma (0.68 / 0.95 if Gaussian and calibrated).\n"]
    for task in sorted({s["task"] for s in summaries}):
        signals = summaries[0]["signals"]
        header = ["Model", "Regime", "Seeds"]
        for name in signals:
            header += [f"ρ {name} ID", f"ρ {name} OOD"]
        header += ["ENCE ID", "ENCE OOD", "within 1σ/2σ OOD", "best OOD signal"]
        lines += [f"## {task}\n", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for summary in (s for s in summaries if s["task"] == task):
            cells = [summary["model"], summary["regime"],
                     ", ".join(str(seed) for seed in summary["seeds"])]
            for name in signals:
                for split in ("id_test", "ood_test"):
                    rho = summary["splits"][split]["signals"][name]["spearman"]
                    cells.append("-" if rho is None else f"{rho:.2f}")
            for split in ("id_test", "ood_test"):
                value = summary["splits"][split]["ence"]
                cells.append("-" if value is None else f"{value:.2f}")
            cover = summary["splits"]["ood_test"]["coverage"]
            cells += [f"{cover['within_1_sigma']:.2f} / {cover['within_2_sigma']:.2f}",
                      summary.get("best_ood_signal") or "-"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    (out_dir / "uncertainty.md").write_text("\n".join(lines))
    return [out_dir / "uncertainty.md"]
