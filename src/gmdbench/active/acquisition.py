"""Acquisition rules: which N frames of the unlabelled pool to label next.

Each rule sees only what a real loop has before labelling: the pool frames' geometry (as
descriptors or distances) and the current models' predictions; never a pool label.

- ``random``: N frames drawn uniformly, seeded by (seed, round);
- ``ensemble``: the N frames of largest ensemble force spread;
- ``distance``: the N frames farthest (max over atoms, SOAP) from the current training set;
- ``farthest_point``: greedy farthest-point sampling on frame descriptors (the mean SOAP vector
  of a frame's atoms), starting from the current training set: each pick is the frame farthest
  from the training frames and the frames already picked, so a batch spreads out instead of
  taking N near-copies from one region (the failure of top-N ``distance``).
Ties are broken by pool order (stable), so every rule is deterministic.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.spatial.distance import cdist

Rule = Literal["random", "ensemble", "distance", "farthest_point"]
RULES: tuple[str, ...] = ("random", "ensemble", "distance", "farthest_point")


def pick_random(candidates: np.ndarray, n: int, seed: int, round_index: int) -> np.ndarray:
    rng = np.random.default_rng([seed, round_index])
    return np.sort(rng.choice(candidates, size=min(n, len(candidates)), replace=False))


def pick_largest(candidates: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` candidates of largest score (``scores`` indexed like ``candidates``)."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    return np.sort(candidates[order[:n]])


def pick_farthest_points(candidates: np.ndarray, features: np.ndarray,
                         labelled: np.ndarray, n: int) -> np.ndarray:
    """Greedy farthest-point picks among ``candidates`` (rows of ``features``), starting from
    the ``labelled`` descriptors (the current training frames)."""
    nearest = cdist(features, labelled).min(axis=1) if len(labelled) else \
        np.full(len(features), np.inf)
    picked: list[int] = []
    for _ in range(min(n, len(candidates))):
        choice = int(np.argmax(nearest))  # first of the maxima: stable
        picked.append(choice)
        nearest = np.minimum(nearest, cdist(features, features[choice:choice + 1])[:, 0])
        nearest[picked] = -np.inf
    return np.sort(candidates[picked])
