"""Parity plots: predicted vs reference force components and energies, ID and OOD coloured."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

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
