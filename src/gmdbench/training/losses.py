"""Losses, in eV and eV/A.

``mse`` (default): w_E * MSE(E / n_atoms) + w_F * MSE(F). Energies per atom put molecules of
different sizes on one footing; the defaults (w_E = 1, w_F = 10) weight forces more, as force
errors are what MD and the GMD-26 table stress.
``mae_l2`` (the GMD-26 authors' fairchem setting): w_E * MAE(E) + w_F * mean_i |G_i - F_i|,
total-energy MAE plus the mean per-atom force-error norm.
Either adds a model's ``auxiliary_loss`` when it returns one (weighted by the model's config).
"""

from __future__ import annotations

import torch

from gmdbench.data.graphs import Batch


def _auxiliary(prediction: dict[str, torch.Tensor]) -> torch.Tensor | float:
    """A model's own regulariser (e.g. DeepSet-MoE's load-balancing loss), already weighted."""
    auxiliary = prediction.get("auxiliary_loss")
    return 0.0 if auxiliary is None else auxiliary.to(torch.float64)


def energy_force_loss(prediction: dict[str, torch.Tensor], batch: Batch,
                      energy_weight: float, force_weight: float) -> dict[str, torch.Tensor]:
    n_atoms = batch.n_atoms.to(torch.float64)
    energy_error = (prediction["energy"] - batch.energy.to(torch.float64)) / n_atoms
    energy_mse = torch.mean(energy_error**2)
    force_mse = torch.mean((prediction["forces"] - batch.forces) ** 2).to(torch.float64)
    total = energy_weight * energy_mse + force_weight * force_mse + _auxiliary(prediction)
    return {"loss": total, "energy_mse": energy_mse.detach(), "force_mse": force_mse.detach()}


def energy_force_mae_l2_loss(prediction: dict[str, torch.Tensor], batch: Batch,
                             energy_weight: float, force_weight: float
                             ) -> dict[str, torch.Tensor]:
    energy_error = prediction["energy"] - batch.energy.to(torch.float64)
    energy_mae = torch.mean(torch.abs(energy_error))
    force_l2 = torch.mean(torch.linalg.vector_norm(prediction["forces"] - batch.forces, dim=1))
    total = energy_weight * energy_mae + force_weight * force_l2.to(torch.float64) \
        + _auxiliary(prediction)
    n_atoms = batch.n_atoms.to(torch.float64)
    return {"loss": total,
            "energy_mse": torch.mean((energy_error / n_atoms) ** 2).detach(),
            "force_mse": torch.mean((prediction["forces"] - batch.forces) ** 2).detach()
            .to(torch.float64)}


LOSSES = {"mse": energy_force_loss, "mae_l2": energy_force_mae_l2_loss}
