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
- ``no_label``: picks nothing; the control that gets the same extra training as the other rules
  and no new frames, so "more labels" is separated from "more training".
Ties are broken by pool order (stable), so every rule is deterministic given its candidates; a
study that draws each seed's candidates from the pool with the seed makes them vary by seed.

Batch diversity (``pick_top_in_clusters``) for the score rules: the 4N best-scoring candidates
are clustered into N groups on their frame descriptors (scikit-learn k-means, seeded) and the
best of each group is taken, so a batch does not spend its labels on N near-copies of one
region (top-N ``distance`` took all 16 frames of its first batch from one molecule).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

Rule = Literal["random", "ensemble", "distance", "farthest_point", "no_label"]
RULES: tuple[str, ...] = ("random", "ensemble", "distance", "farthest_point")
CONTROL = "no_label"  # not in RULES' default list: a study asks for it
SHORTLIST = 4  # diversity: cluster the SHORTLIST x N best-scoring candidates


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


def pick_top_in_clusters(candidates: np.ndarray, scores: np.ndarray, features: np.ndarray,
                         n: int, seed: int) -> np.ndarray:
    """The best-scoring candidate of each of ``n`` k-means clusters of the SHORTLIST x ``n``
    best-scoring candidates (``scores`` and ``features`` rows indexed like ``candidates``)."""
    n = min(n, len(candidates))
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    shortlist = order[:SHORTLIST * n]
    if len(shortlist) <= n:
        return np.sort(candidates[shortlist])
    with warnings.catch_warnings():  # fewer distinct rows than clusters: handled below
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = KMeans(n_clusters=n, random_state=seed, n_init=10).fit_predict(
            np.asarray(features, dtype=float)[shortlist])
    # shortlist is in score order, so the first member of each cluster is its best
    best = [shortlist[np.flatnonzero(labels == cluster)[0]] for cluster in np.unique(labels)]
    if len(best) < n:  # k-means left a cluster empty (duplicate rows): fill by score
        best += [i for i in shortlist if i not in set(best)][:n - len(best)]
    return np.sort(candidates[np.asarray(best)])
