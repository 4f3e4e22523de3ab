"""Distance from the training manifold, and how errors grow with it (DESIGN.md section 7).

For a test atom of element Z: d_k = distance of its descriptor to the k-th nearest training
environment of element Z, divided by m_Z, the median over training environments of Z of the
distance to their k-th nearest training environment *of another trajectory* (leave one
trajectory out). A structure's distance is the max over its atoms (the mean is kept too).

Why another trajectory: consecutive MD frames are nearly the same geometry, so 91-97% of a
training environment's nearest training neighbours sit in its own trajectory, mostly in the
adjacent frame; normalised by that spacing, "1" measured the MD stride (halve it and every
distance doubles) and id_test frames, which come from other trajectories of the same
molecules, sat at a median of 2. The distance from one trajectory to the others is what an
id_test frame faces, so with this unit id_test sits near 1 whatever the stride, and a training
frame still has distance 0 to its own set.

Nearest neighbours: faiss ``IndexFlatL2``, exact search with BLAS kernels over float32 vectors
held in memory, one index per element. 10^6 environments of 312 SOAP features (the default
settings, three elements) take 1.2 GiB, well inside 24 GiB; exact search keeps the distance
deterministic, which an approximate index (HNSW, IVF) would not. m_Z is estimated from at most
``median_sample`` (5000) training environments per element (seeded), each searched against the
environments of the other trajectories (faiss's ID selector excludes its own trajectory's
contiguous id range), so fitting costs O(sample x n) rather than O(n^2).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import spearmanr


class ManifoldSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(1, ge=1, description="k-th nearest training environment")
    median_sample: int = Field(5000, ge=10, description="training environments per element "
                               "used to estimate the median training distance")
    seed: int = 0
    unit: Literal["other_trajectory"] = Field(
        "other_trajectory", description="the normaliser: median distance of training "
        "environments to the k-th nearest training environment of another trajectory")


class TrainingManifold:
    """Per-element exact k-NN indices over training environments, and the median distance of a
    training environment to the training environments of other trajectories (the unit)."""

    def __init__(self, features: np.ndarray, numbers: np.ndarray, settings: ManifoldSettings,
                 trajectories: np.ndarray):
        """``trajectories``: the trajectory of each training environment (any labels)."""
        import faiss

        features = np.ascontiguousarray(features, dtype=np.float32)
        trajectories = np.asarray(trajectories)
        if len(trajectories) != len(features):
            raise ValueError(f"{len(trajectories)} trajectory labels for {len(features)} "
                             "training environments")
        self.settings = settings
        self.indices: dict[int, faiss.IndexFlatL2] = {}
        self.median: dict[int, float] = {}
        rng = np.random.default_rng(settings.seed)
        for z in sorted({int(v) for v in numbers}):
            mask = numbers == z
            order = np.argsort(trajectories[mask], kind="stable")  # each trajectory contiguous
            own, groups = features[mask][order], trajectories[mask][order]
            if len(own) <= settings.k:
                raise ValueError(f"element Z={z} has {len(own)} training environments, "
                                 f"fewer than k + 1 = {settings.k + 1}")
            index = faiss.IndexFlatL2(own.shape[1])
            index.add(own)
            self.indices[z] = index
            spacing = _other_trajectory_spacing(index, own, groups, settings, rng, z)
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


def _other_trajectory_spacing(index, own: np.ndarray, groups: np.ndarray,
                              settings: ManifoldSettings, rng: np.random.Generator, z: int
                              ) -> float:
    """Median over (a sample of) training environments of the distance to their k-th nearest
    training environment of another trajectory; ``own`` is sorted by ``groups``."""
    import faiss

    labels, starts, counts = np.unique(groups, return_index=True, return_counts=True)
    if len(labels) < 2:
        raise ValueError(f"element Z={z} appears in one training trajectory only: the distance "
                         "unit (spacing between trajectories) needs two or more")
    sample = np.arange(len(own)) if len(own) <= settings.median_sample else \
        np.sort(rng.choice(len(own), settings.median_sample, replace=False))
    distances = []
    for start, count in zip(starts, counts, strict=True):
        members = sample[(sample >= start) & (sample < start + count)]
        if members.size == 0:
            continue
        if len(own) - count < settings.k:
            raise ValueError(f"element Z={z}: fewer than k = {settings.k} training "
                             "environments outside one trajectory")
        others = faiss.SearchParameters(
            sel=faiss.IDSelectorNot(faiss.IDSelectorRange(int(start), int(start + count))))
        squared, _ = index.search(own[members], settings.k, params=others)
        distances.append(np.sqrt(np.maximum(squared[:, settings.k - 1], 0.0)))
    return float(np.median(np.concatenate(distances)))


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
