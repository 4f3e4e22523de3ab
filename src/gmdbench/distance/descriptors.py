"""Per-atom environment descriptors: SOAP (dscribe) with fixed, recorded settings, or a model's
own node features.

SOAP vectors are L2-normalised, so the Euclidean distance between two environments is
sqrt(2 - 2 k) with k the normalised SOAP kernel (dot product): the usual SOAP similarity,
insensitive to how many neighbours an environment has.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field

from gmdbench.data.graphs import GraphSet, evaluation_edge_budget


class SoapSettings(BaseModel):
    """dscribe SOAP hyper-parameters; recorded with every distance result."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r_cut: float = Field(5.0, gt=0, description="A; the cutoff of the small models too")
    n_max: int = Field(4, ge=1)
    l_max: int = Field(3, ge=0)
    sigma: float = Field(0.5, gt=0, description="A, Gaussian width of the atomic densities")
    rbf: str = "gto"
    average: str = "off"
    species: list[int] = Field(default_factory=list,
                               description="atomic numbers; set from the dataset")


def soap_descriptors(structures: Sequence[Atoms], settings: SoapSettings,
                     n_jobs: int = 1) -> np.ndarray:
    """SOAP of every atom of every structure, stacked (n_atoms_total, n_features), float32."""
    from dscribe.descriptors import SOAP

    if not settings.species:
        raise ValueError("SOAP needs its species (the dataset's elements)")
    periodic = any(bool(atoms.pbc.any()) for atoms in structures)
    soap = SOAP(species=settings.species, r_cut=settings.r_cut, n_max=settings.n_max,
                l_max=settings.l_max, sigma=settings.sigma, rbf=settings.rbf,
                average=settings.average, periodic=periodic, sparse=False, dtype="float64")
    features = soap.create(list(structures), n_jobs=n_jobs)
    if len(structures) == 1:
        features = [features]
    stacked = np.concatenate([np.asarray(f) for f in features]).astype(np.float32)
    norms = np.linalg.norm(stacked, axis=1, keepdims=True)
    return stacked / np.where(norms > 0, norms, 1.0)


def model_descriptors(potential: torch.nn.Module, graphs: GraphSet, batch_size: int = 32,
                      dtype: torch.dtype = torch.float32) -> np.ndarray:
    """A model's node features (``node_features`` of its forward) for every atom, float32."""
    potential.eval()
    chunks = []
    device = next(potential.buffers()).device  # wherever the model is, the batches go
    for _, batch in graphs.batches(batch_size, dtype, device=device,
                                   max_edges=evaluation_edge_budget()):
        out = potential(batch)
        if out.get("node_features") is None:
            raise ValueError(f"model {potential.metadata.name} exposes no node features")
        chunks.append(out["node_features"].detach().cpu().numpy().reshape(
            batch.positions.shape[0], -1))
    return np.concatenate(chunks).astype(np.float32)
