"""Parity plots: predicted vs reference force components and energies, ID and OOD coloured."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from gmdbench.evaluation.evaluate import Predictions

COLOURS = {"id_test": "tab:blue", "ood_test": "tab:red"}


def parity_plot(predictions: dict[str, Predictions], title: str, out: Path) -> Path:
    figure, (forces_axis, energy_axis) = plt.subplots(1, 2, figsize=(10, 4.6))
    for split, prediction in predictions.items():
        label = "ID" if split == "id_test" else "OOD"
        forces_axis.scatter(prediction.forces_reference.ravel(), prediction.forces.ravel(), s=2,
                            alpha=0.35, color=COLOURS[split], label=label, rasterized=True)
        energy_axis.scatter(prediction.energy_reference, prediction.energy, s=8, alpha=0.6,
                            color=COLOURS[split], label=label)
    for axis, name in ((forces_axis, "force component (eV/A)"), (energy_axis,
                                                                   "total energy (eV)")):
        low = min(axis.get_xlim()[0], axis.get_ylim()[0])
        high = max(axis.get_xlim()[1], axis.get_ylim()[1])
        axis.plot([low, high], [low, high], color="black", linewidth=0.8)
        axis.set_xlabel(f"reference {name}")
        axis.set_ylabel(f"predicted {name}")
        axis.legend(markerscale=3)
    figure.suptitle(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def _plain_log_ticks(axis: plt.Axes) -> None:
    """Plain numbers on a log axis (1, 2, 3, 5, 10, ...): a reader compares with "3x", "30x"."""
    axis.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
    axis.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.yaxis.set_minor_formatter(ticker.NullFormatter())


def ratio_chart(rows: list, task: str, out: Path) -> Path | None:
    """One bar per model row of ``task``: its OOD/ID force-MAE ratio, mean over seeds with the
    seeds' standard deviation as error bar (log scale: ratios span 1 to 100+). Reference rows
    are hatched. ``rows``: report.tables.TableRow (not imported: plots know no table)."""
    shown = [row for row in rows if row.task == task and not row.baseline
             and row.values.get(("force_mae", "ood_test"))]
    if not shown:
        return None
    ratios = [row.ood_id_ratio() for row in shown]
    labels = [f"{row.model} ({row.regime})" + (f"\n{row.differs}" if row.differs else "")
              + (" [reference]" if row.reference else "") for row in shown]
    figure, axis = plt.subplots(figsize=(max(6.0, 0.7 * len(shown) + 2), 4.8))
    positions = range(len(shown))
    bars = axis.bar(positions, [mean for mean, _ in ratios], yerr=[std for _, std in ratios],
                    capsize=3, color="tab:red", alpha=0.75, edgecolor="black", linewidth=0.6)
    for bar, row in zip(bars, shown, strict=True):
        if row.reference:
            bar.set_hatch("//")
    axis.bar_label(bars, labels=[f"{mean:.1f}" for mean, _ in ratios], padding=2, fontsize=7)
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_yscale("log")
    axis.set_ylim(0.8, max(2.0, max(mean + std for mean, std in ratios) * 1.5))
    _plain_log_ticks(axis)
    axis.set_xticks(list(positions), labels, rotation=60, ha="right", fontsize=7)
    axis.set_ylabel("OOD / ID force MAE (mean ± std over seeds)")
    axis.set_title(f"{task}: how much worse on unseen molecules")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120, bbox_inches="tight")  # long labels: nothing clipped
    plt.close(figure)
    return out


def published_comparison_chart(labels: list[str], ours: list[dict[str, tuple[float, float]]],
                               theirs: list[dict[str, float]], out: Path) -> Path | None:
    """Ours beside the published table, per architecture: OOD/ID force ratio, ID and OOD force MAE
    (log scales: the published values span 1.8-138x and 0.06-0.25 eV/A). ``ours``: per label
    ``{"ratio", "id", "ood": (mean, std)}``; ``theirs``: ``{"ratio", "id", "ood": value}``."""
    if not labels:
        return None
    figure, axes = plt.subplots(1, 3, figsize=(max(12.0, 2.2 * len(labels) + 3), 4.6))
    width = 0.38
    positions = np.arange(len(labels))
    # the ID panel explains the ratios: the published ID errors are 1-11x lower than ours
    for axis, key, title in ((axes[0], "ratio", "OOD / ID force MAE"),
                             (axes[1], "id", "ID force MAE (eV/A)"),
                             (axes[2], "ood", "OOD force MAE (eV/A)")):
        mine = [point[key] for point in ours]
        axis.bar(positions - width / 2, [mean for mean, _ in mine], width,
                 yerr=[std for _, std in mine], capsize=3, color="tab:red", alpha=0.75,
                 edgecolor="black", linewidth=0.6, label="gmd-bench (mean ± std over seeds)")
        axis.bar(positions + width / 2, [point[key] for point in theirs], width,
                 color="lightgrey", edgecolor="black", linewidth=0.6, label="published")
        axis.set_yscale("log")
        _plain_log_ticks(axis)
        axis.set_xticks(positions, labels, rotation=30, ha="right", fontsize=8)
        axis.set_title(title)
    axes[0].axhline(1.0, color="black", linewidth=0.8)
    axes[0].legend(fontsize=7)
    figure.suptitle("GMD-26 fragment duplication: ours beside the published table")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return out


def convergence_plot(curves: dict[str, list[list[float]]], task: str, out: Path) -> Path | None:
    """Val force MAE per epoch, one panel per model label, one line per seed: whether a run
    had flattened out when it stopped is seen here at a glance."""
    curves = {label: runs for label, runs in curves.items() if any(runs)}
    if not curves:
        return None
    columns = min(4, len(curves))
    rows = -(-len(curves) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(max(6.5, 3.4 * columns), 2.8 * rows),
                                squeeze=False)
    for axis, (label, runs) in zip(axes.ravel(), sorted(curves.items()), strict=False):
        for curve in runs:
            axis.plot(range(len(curve)), curve, linewidth=1.0)
        axis.set_yscale("log")
        axis.set_title(label, fontsize=8)
        axis.set_xlabel("epoch", fontsize=7)
        axis.set_ylabel("val force MAE (eV/A)", fontsize=7)
        axis.tick_params(labelsize=7)
    for axis in axes.ravel()[len(curves):]:
        axis.set_visible(False)
    figure.suptitle(f"{task}: training curves (one line per seed)", fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def learning_curve_plot(curves: dict[str, list[list[dict[str, float]]]], title: str, out: Path
                        ) -> Path | None:
    """ID force MAE, OOD force MAE and their ratio against epoch (the runs' learning curves,
    scored on fixed test frames and never read by training), one colour per label, one line
    per run: how the ratio moves as training lowers the ID error."""
    curves = {label: [c for c in runs if c] for label, runs in curves.items()}
    curves = {label: runs for label, runs in curves.items() if runs}
    if not curves:
        return None
    figure, axes = plt.subplots(1, 3, figsize=(13.5, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (label, runs) in enumerate(sorted(curves.items())):
        colour = colours[index % len(colours)]
        for number, curve in enumerate(runs):
            epochs = [point["epoch"] + 1 for point in curve]
            iid = np.array([point["id_test_force_mae"] for point in curve])
            ood = np.array([point["ood_test_force_mae"] for point in curve])
            for axis, values in zip(axes, (iid, ood, ood / iid), strict=True):
                axis.plot(epochs, values, color=colour, marker="o", markersize=2.5,
                          linewidth=1.0, alpha=0.85, label=label if number == 0 else None)
    for axis, name in zip(axes, ("ID force MAE (eV/A)", "OOD force MAE (eV/A)",
                                 "OOD / ID force MAE"), strict=True):
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.set_yscale("log")
        axis.set_xscale("log")
    _plain_log_ticks(axes[2])
    axes[2].legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


FACTOR_COLOURS = {"central": "tab:blue", "data size": "tab:green", "model size": "tab:purple",
                  "split protocol": "tab:orange"}
MODEL_MARKERS = {"schnet": "o", "mace": "s"}


def why_ratios_chart(reference: list[tuple[float, float]], study: list[tuple[str, str, float,
                                                                              float]],
                     curves: list[tuple[str, list[float], list[float]]],
                     published: list[tuple[str, float, float]], out: Path,
                     law: tuple[float, float] | None = None) -> Path | None:
    """OOD/ID force-MAE ratio against ID force MAE (log-log): the reference matrix's runs
    (grey), the why-ratios runs coloured by factor (marker by model), the central runs'
    learning curves as thin lines, and the published architectures as black stars.
    ``study``: (model, factor, id, ratio); ``curves``: (model, ids, ratios);
    ``published``: (name, id, ratio); ``law``: (intercept, slope) of log10 ratio against log10
    ID fitted on the reference runs, drawn over the whole ID range shown."""
    if not study and not reference:
        return None
    figure, axis = plt.subplots(figsize=(8.2, 5.6))
    if law is not None:
        every = [x for x, _ in reference] + [p[1] for p in published] + [s[2] for s in study]
        xs = np.geomspace(min(every), max(every), 50)
        axis.plot(xs, 10 ** (law[0] + law[1] * np.log10(xs)), color="grey", linestyle=":",
                  linewidth=1.2, label=f"fit to the reference runs (slope {law[1]:+.2f})")
    if reference:
        axis.scatter(*zip(*reference, strict=True), s=18, color="lightgrey", edgecolor="grey",
                     linewidth=0.5, label="reference matrix (all models)", zorder=2)
    for model, ids, ratios in curves:
        axis.plot(ids, ratios, color=FACTOR_COLOURS["central"], alpha=0.35, linewidth=0.9,
                  marker=MODEL_MARKERS.get(model, "o"), markersize=2.5, zorder=3)
    shown = set()
    for model, factor, iid, ratio in study:
        label = f"{model}: {factor}"
        axis.scatter([iid], [ratio], s=46, color=FACTOR_COLOURS.get(factor, "black"),
                     marker=MODEL_MARKERS.get(model, "o"), edgecolor="black", linewidth=0.6,
                     label=None if label in shown else label, zorder=4)
        shown.add(label)
    for index, (name, iid, ratio) in enumerate(sorted(published, key=lambda p: p[1])):
        axis.scatter([iid], [ratio], s=110, marker="*", color="black", zorder=5,
                     label="published" if index == 0 else None)
        # neighbours alternate above and below, so close stars keep readable names
        axis.annotate(name, (iid, ratio), textcoords="offset points", fontsize=7,
                      xytext=(5, 4) if index % 2 == 0 else (5, -11))
    axis.set_xscale("log")
    axis.set_yscale("log")
    _plain_log_ticks(axis)
    axis.axhline(3.0, color="black", linewidth=0.7, linestyle="--")
    axis.set_xlabel("ID force MAE (eV/A)")
    axis.set_ylabel("OOD / ID force MAE")
    axis.set_title("GMD-26 fragment duplication: OOD/ID against ID error")
    axis.legend(fontsize=7, loc="upper right", ncol=2)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
