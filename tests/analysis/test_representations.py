"""Linear CKA and projections of node features."""

import json

import numpy as np
import pytest
from scipy.stats import ortho_group

from gmdbench.analysis.representations import ProjectionSettings, linear_cka, project
from tests_support import gmd


def test_cka_of_a_representation_with_itself_is_one_and_rotation_invariant():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16))
    rotation = ortho_group.rvs(16, random_state=1)
    assert linear_cka(features, features) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(features, features @ rotation) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(features, 3.0 * features @ rotation) == pytest.approx(1.0, abs=1e-10)
    unrelated = rng.normal(size=(400, 16))
    assert linear_cka(features, unrelated) < 0.2


def test_projections_separate_separated_groups():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 8))
    b = rng.normal(size=(60, 8)) + 6.0
    labels = np.array(["ID"] * 60 + ["OOD"] * 60)
    pca, tsne = project("m", np.concatenate([a, b]), labels, ProjectionSettings(perplexity=10))
    assert pca.method == "pca" and tsne.method == "tsne" and tsne.perplexity == 10
    assert pca.silhouette > 0.5 and tsne.silhouette > 0.5


def test_gmd_representations_on_trained_runs(trained_runs, tmp_path):
    _, run_dirs = trained_runs
    result = gmd("representations", *run_dirs, "--out", tmp_path / "r", "--frames", "4",
                 "--perplexity", "5")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "r" / "representations.json").read_text())
    cka = np.array(summary["cka"])
    assert cka.shape == (3, 3) and np.allclose(np.diag(cka), 1.0)
    assert np.all((cka > 0) & (cka <= 1 + 1e-9))
    assert (tmp_path / "r" / "cka.png").exists() and (tmp_path / "r" / "projections.png").exists()
