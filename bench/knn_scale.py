"""Can the distance from the training manifold handle 10^6 training environments here?

Builds a TrainingManifold (faiss IndexFlatL2 per element, exact) over N environments of D
features split among three elements like an organic dataset (H 50%, C 35%, O 15%), with
L2-normalised vectors like our SOAP, then queries Q test environments. Prints the peak
resident memory, the fit and query times, and the ratio of faiss's exact search to a chunked
NumPy brute force on a 10^5 subset (same answers, checked).

Usage: python bench/knn_scale.py [--n 1000000] [--d 312] [--queries 10000]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from gmdbench.distance.manifold import ManifoldSettings, TrainingManifold


def _vectors(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.random((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def numpy_nearest(train: np.ndarray, queries: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Exact nearest distance by chunked ||a||^2 + ||b||^2 - 2 a.b (the obvious alternative)."""
    squared_train = (train**2).sum(1)
    out = np.empty(len(queries))
    for start in range(0, len(queries), chunk):
        block = queries[start:start + chunk]
        d2 = (block**2).sum(1)[:, None] + squared_train[None] - 2.0 * block @ train.T
        out[start:start + chunk] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=312)
    parser.add_argument("--queries", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    numbers = rng.choice([1, 6, 8], size=args.n, p=[0.5, 0.35, 0.15])
    features = _vectors(rng, args.n, args.d)
    started = time.perf_counter()
    manifold = TrainingManifold(features, numbers, ManifoldSettings())
    fit = time.perf_counter() - started
    queries = _vectors(rng, args.queries, args.d)
    query_numbers = rng.choice([1, 6, 8], size=args.queries, p=[0.5, 0.35, 0.15])
    started = time.perf_counter()
    manifold.atom_distances(queries, query_numbers)
    query = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"N = {args.n:,} environments x {args.d} features "
          f"({features.nbytes / 2**30:.2f} GiB of float32)")
    print(f"fit (indices + median spacing from {ManifoldSettings().median_sample} samples per "
          f"element): {fit:.1f} s; {args.queries:,} queries: {query:.1f} s; "
          f"peak RSS {peak_gib:.2f} GiB (machine: 24 GiB)")
    subset = features[:100_000]
    import faiss

    index = faiss.IndexFlatL2(args.d)
    index.add(subset)
    probe = queries[:2000]
    started = time.perf_counter()
    squared, _ = index.search(probe, 1)
    faiss_seconds = time.perf_counter() - started
    started = time.perf_counter()
    brute = numpy_nearest(subset, probe)
    numpy_seconds = time.perf_counter() - started
    assert np.allclose(np.sqrt(np.maximum(squared[:, 0], 0)), brute, atol=1e-3)
    print(f"exact search, 2,000 queries x 100,000 environments: numpy brute force / faiss = "
          f"{numpy_seconds / faiss_seconds:.2f} (same answers)")


if __name__ == "__main__":
    main()
