"""Loss: w_E * MSE(E / n_atoms) + w_F * MSE(F), in eV and eV/A.

Energies per atom put molecules of different sizes on one footing; the defaults (w_E = 1,
w_F = 10) weight forces more, as force errors are what MD and the GMD-26 table stress.
"""

from __future__ import annotations

import torch

from gmdbench.data.graphs import Batch


def energy_force_loss(prediction: dict[str, torch.Tensor], batch: Batch,
                      energy_weight: float, force_weight: float) -> dict[str, torch.Tensor]:
    n_atoms = batch.n_atoms.to(torch.float64)
    energy_error = (prediction["energy"] - batch.energy.to(torch.float64)) / n_atoms
    energy_mse = torch.mean(energy_error**2)
    force_mse = torch.mean((prediction["forces"] - batch.forces) ** 2).to(torch.float64)
    total = energy_weight * energy_mse + force_weight * force_mse
    return {"loss": total, "energy_mse": energy_mse.detach(), "force_mse": force_mse.detach()}
