"""What models learned, compared on the same atoms: linear CKA, PCA and t-SNE projections.

- **Linear CKA** (Kornblith et al. 2019) between the node features of two models on the same
  atoms: ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) after centring the columns. 1 for the same
  representation up to an orthogonal transformation and isotropic scaling, whatever the widths.
- **PCA** and **t-SNE** (scikit-learn) of each model's standardised features, with the
  silhouette score of a labelling (ID vs OOD molecules, path class, ...) in each projection:
  how separated the groups are in what the model computes. Seeds and perplexities are recorded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment of two (n_samples, d) feature matrices."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs the same samples: {x.shape[0]} vs {y.shape[0]} rows")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x, "fro") ** 2
    norm = np.linalg.norm(x.T @ x, "fro") * np.linalg.norm(y.T @ y, "fro")
    return float(cross / norm) if norm > 0 else float("nan")


def cka_matrix(features: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    names = list(features)
    matrix = np.ones((len(names), len(names)))
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            matrix[a, b] = matrix[b, a] = linear_cka(features[names[a]], features[names[b]])
    return names, matrix


class ProjectionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    perplexity: float = Field(30.0, gt=1)
    max_samples: int = Field(3000, ge=10, description="atoms sampled (seeded) for t-SNE")


class Projection(BaseModel):
    model: str
    method: str
    coordinates: list[list[float]]
    labels: list[str]
    silhouette: float | None
    explained_variance: list[float] | None = None
    seed: int
    perplexity: float | None = None


def _silhouette(points: np.ndarray, labels: np.ndarray) -> float | None:
    from sklearn.metrics import silhouette_score

    if len(set(labels.tolist())) < 2 or len(points) <= len(set(labels.tolist())):
        return None
    return float(silhouette_score(points, labels))


def project(name: str, features: np.ndarray, labels: np.ndarray,
            settings: ProjectionSettings) -> list[Projection]:
    """PCA (2 components) and t-SNE of standardised features, each with its silhouette."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(settings.seed)
    index = np.arange(len(features))
    if len(index) > settings.max_samples:
        index = np.sort(rng.choice(index, settings.max_samples, replace=False))
    scaled = StandardScaler().fit_transform(np.asarray(features, dtype=np.float64)[index])
    chosen = np.asarray(labels)[index]
    pca = PCA(n_components=2, random_state=settings.seed)
    pca_points = pca.fit_transform(scaled)
    perplexity = min(settings.perplexity, (len(index) - 1) / 3.0)
    tsne_points = TSNE(n_components=2, perplexity=perplexity, random_state=settings.seed,
                       init="pca").fit_transform(scaled)
    return [
        Projection(model=name, method="pca", coordinates=pca_points.tolist(),
                   labels=chosen.tolist(), silhouette=_silhouette(pca_points, chosen),
                   explained_variance=pca.explained_variance_ratio_.tolist(),
                   seed=settings.seed),
        Projection(model=name, method="tsne", coordinates=tsne_points.tolist(),
                   labels=chosen.tolist(), silhouette=_silhouette(tsne_points, chosen),
                   seed=settings.seed, perplexity=perplexity),
    ]


def plot_cka(names: list[str], matrix: np.ndarray, out: Path, title: str = "linear CKA"
             ) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = 1.2 + 0.9 * len(names)
    figure, axis = plt.subplots(figsize=(size + 1.5, size))
    image = axis.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(len(names)), names, fontsize=8)
    for a in range(len(names)):
        for b in range(len(names)):
            axis.text(b, a, f"{matrix[a, b]:.2f}", ha="center", va="center", fontsize=8,
                      color="w" if matrix[a, b] < 0.6 else "k")
    figure.colorbar(image, ax=axis, fraction=0.046)
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def plot_projections(projections: list[Projection], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(p.model for p in projections))
    figure, axes = plt.subplots(2, len(models), figsize=(4 * len(models), 7.5), squeeze=False)
    for column, model in enumerate(models):
        for row, method in enumerate(("pca", "tsne")):
            axis = axes[row, column]
            projection = next(p for p in projections if p.model == model and p.method == method)
            points = np.asarray(projection.coordinates)
            labels = np.asarray(projection.labels)
            for label in sorted(set(labels.tolist())):
                mask = labels == label
                axis.scatter(*points[mask].T, s=4, alpha=0.5, label=label)
            score = "n/a" if projection.silhouette is None else f"{projection.silhouette:.2f}"
            axis.set_title(f"{model}: {method.upper()} (silhouette {score})", fontsize=9)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[0, column].legend(fontsize=7, markerscale=3)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def compare_representations(features: dict[str, np.ndarray], labels: np.ndarray, out_dir: Path,
                            settings: ProjectionSettings, title: str) -> dict:
    """CKA matrix and PCA/t-SNE projections of several models' features on the same atoms:
    ``cka.png``, ``projections.png`` in ``out_dir``, and a JSON-ready summary."""
    names, matrix = cka_matrix(features)
    projections = [p for name in names for p in project(name, features[name], labels, settings)]
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_cka(names, matrix, out_dir / "cka.png", title)
    plot_projections(projections, out_dir / "projections.png")
    return {"models": names, "cka": matrix.tolist(), "settings": settings.model_dump(),
            "silhouette": {f"{p.model} {p.method}": p.silhouette for p in projections},
            "perplexity": {p.model: p.perplexity for p in projections if p.perplexity}}
