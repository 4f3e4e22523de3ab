"""Distance from the training manifold, and how errors grow with it (DESIGN.md section 7).

For a test atom of element Z: d_k = distance of its descriptor to the k-th nearest training
environment of element Z, divided by m_Z, the median over training environments of Z of the
same distance to their own k-th nearest *other* training environment. So 1 means "as close as
training points are to each other" and a training frame has distance 0 to its own set. A
structure's distance is the max over its atoms (the mean is kept too).

Nearest neighbours: faiss ``IndexFlatL2``, exact search with BLAS kernels over float32 vectors
held in memory, one index per element. 10^6 environments of 312 SOAP features (the default
settings, three elements) take 1.2 GiB, well inside 24 GiB; exact search keeps the distance
deterministic, which an approximate index (HNSW, IVF) would not. m_Z is estimated from at most
``median_sample`` (5000) training environments per element (seeded), each searched against all of
them, so fitting costs O(sample x n) rather than O(n^2).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import spearmanr


class ManifoldSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(1, ge=1, description="k-th nearest training environment")
    median_sample: int = Field(5000, ge=10, description="training environments per element "
                               "used to estimate the median training distance")
    seed: int = 0


class TrainingManifold:
    """Per-element exact k-NN indices over training environments and their median spacing."""

    def __init__(self, features: np.ndarray, numbers: np.ndarray, settings: ManifoldSettings):
        import faiss

        features = np.ascontiguousarray(features, dtype=np.float32)
        self.settings = settings
        self.indices: dict[int, faiss.IndexFlatL2] = {}
        self.median: dict[int, float] = {}
        rng = np.random.default_rng(settings.seed)
        for z in sorted({int(v) for v in numbers}):
            own = features[numbers == z]
            if len(own) <= settings.k:
                raise ValueError(f"element Z={z} has {len(own)} training environments, "
                                 f"fewer than k + 1 = {settings.k + 1}")
            index = faiss.IndexFlatL2(own.shape[1])
            index.add(own)
            sample = own if len(own) <= settings.median_sample else \
                own[rng.choice(len(own), settings.median_sample, replace=False)]
            squared, _ = index.search(sample, settings.k + 1)  # the first hit is the point itself
            spacing = float(np.median(np.sqrt(np.maximum(squared[:, settings.k], 0.0))))
            self.indices[z] = index
            self.median[z] = spacing if spacing > 0 else float(np.finfo(np.float32).eps)

    def atom_distances(self, features: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Normalised distance of each atom (inf for an element never seen in training)."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        width = next(iter(self.indices.values())).d
        if features.ndim != 2 or features.shape[1] != width:
            raise ValueError(f"descriptors of shape {features.shape} do not match the training "
                             f"descriptors' {width} features (same settings and species?)")
        result = np.full(len(features), np.inf)
        for z in np.unique(numbers):
            mask = numbers == z
            if int(z) not in self.indices:
                continue
            squared, _ = self.indices[int(z)].search(features[mask], self.settings.k)
            raw = np.sqrt(np.maximum(squared[:, self.settings.k - 1].astype(np.float64), 0.0))
            result[mask] = raw / self.median[int(z)]
        return result


def frame_distances(atom_distances: np.ndarray, n_atoms: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(max, mean) over the atoms of each frame."""
    ends = np.cumsum(n_atoms)
    starts = ends - n_atoms
    maxima = np.array([atom_distances[a:b].max() for a, b in zip(starts, ends, strict=True)])
    means = np.array([atom_distances[a:b].mean() for a, b in zip(starts, ends, strict=True)])
    return maxima, means


def frame_force_mae(predicted: np.ndarray, reference: np.ndarray, n_atoms: np.ndarray
                    ) -> np.ndarray:
    """Force MAE of each frame (mean over its atoms and components), eV/A."""
    errors = np.abs(predicted - reference).mean(axis=1)
    ends = np.cumsum(n_atoms)
    return np.array([errors[b - n:b].mean() for n, b in zip(n_atoms, ends, strict=True)])


class ErrorVsDistance(BaseModel):
    """Binned error against distance, the rank correlation, and the extrapolation distance."""

    bin_edges: list[float]
    bin_counts: list[int]
    bin_force_mae: list[float | None]
    spearman_rho: float | None
    spearman_p: float | None
    id_test_force_mae: float
    extrapolation_distance: float | None = Field(
        description="lower edge of the smallest-distance bin whose force MAE exceeds twice the "
                    "id_test force MAE; None if no bin does")


def error_vs_distance(distance: np.ndarray, error: np.ndarray, id_test_force_mae: float,
                      bins: int = 12) -> ErrorVsDistance:
    """Frames binned by distance (quantile edges, so bins hold similar counts)."""
    finite = np.isfinite(distance)
    distance, error = distance[finite], error[finite]
    edges = np.unique(np.quantile(distance, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, distance, side="right") - 1, 0, len(edges) - 2)
    counts, maes = [], []
    for b in range(len(edges) - 1):
        selected = error[which == b]
        counts.append(int(selected.size))
        maes.append(float(selected.mean()) if selected.size else None)
    if distance.size > 2 and np.ptp(distance) > 0:
        rho, p = spearmanr(distance, error)
        rho, p = float(rho), float(p)
    else:
        rho = p = None
    extrapolation = next((float(edges[b]) for b, mae in enumerate(maes)
                          if mae is not None and mae > 2 * id_test_force_mae), None)
    return ErrorVsDistance(bin_edges=edges.tolist(), bin_counts=counts, bin_force_mae=maes,
                           spearman_rho=rho, spearman_p=p, id_test_force_mae=id_test_force_mae,
                           extrapolation_distance=extrapolation)
