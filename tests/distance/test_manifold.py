"""The distance from the training manifold: 0 on training frames, growing with displacement."""

import itertools
import json

import numpy as np
import pytest
from ase.build import molecule

from gmdbench.distance.descriptors import SoapSettings, soap_descriptors
from gmdbench.distance.manifold import (
    ManifoldSettings,
    TrainingManifold,
    error_vs_distance,
    frame_distances,
)
from tests_support import gmd

SOAP = SoapSettings(species=[1, 6, 8])


def _training_frames(n=12):
    frames = []
    for seed in range(n):
        atoms = molecule("CH3CH2OH")
        atoms.rattle(0.03, seed=seed)
        frames.append(atoms)
    return frames


def _manifold(frames, k=1):
    features = soap_descriptors(frames, SOAP)
    numbers = np.concatenate([f.numbers for f in frames])
    return TrainingManifold(features, numbers, ManifoldSettings(k=k))


def _distance(manifold, atoms):
    atom = manifold.atom_distances(soap_descriptors([atoms], SOAP), atoms.numbers)
    maxima, means = frame_distances(atom, np.array([len(atoms)]))
    return maxima[0], means[0]


def test_a_training_frame_is_at_distance_zero_from_its_training_set():
    frames = _training_frames()
    manifold = _manifold(frames)
    for atoms in frames[:3]:
        assert _distance(manifold, atoms) == (pytest.approx(0.0, abs=1e-3),) * 2
    # the normaliser is the training points' own spacing, so it is positive
    assert all(spacing > 0 for spacing in manifold.median.values())


def test_distance_grows_monotonically_with_the_rattle_amplitude():
    frames = _training_frames()
    manifold = _manifold(frames)
    direction = np.random.default_rng(5).normal(size=(len(frames[0]), 3))
    direction /= np.abs(direction).max()
    distances = []
    for amplitude in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8):
        atoms = frames[0].copy()
        atoms.positions += amplitude * direction
        distances.append(_distance(manifold, atoms)[0])
    assert distances[0] == pytest.approx(0.0, abs=1e-3)
    assert all(b > a for a, b in itertools.pairwise(distances)), distances
    assert distances[-1] > 1.0  # beyond the training spacing


def test_an_element_never_seen_in_training_is_infinitely_far():
    manifold = _manifold(_training_frames())
    methylamine = molecule("NH3")
    soap = SoapSettings(species=[1, 6, 7, 8])
    with pytest.raises(ValueError):  # descriptors of another species set do not compare
        manifold.atom_distances(soap_descriptors([methylamine], soap), methylamine.numbers)
    features = np.zeros((1, manifold.indices[6].d), dtype=np.float32)
    assert np.isinf(manifold.atom_distances(features, np.array([7]))).all()


def test_extrapolation_distance_is_the_first_bin_above_twice_the_id_error():
    distance = np.linspace(0, 10, 200)
    error = np.where(distance < 6, 0.1, 0.5)
    binned = error_vs_distance(distance, error, id_test_force_mae=0.1, bins=10)
    assert binned.extrapolation_distance == pytest.approx(6.0, abs=0.06)
    assert sum(binned.bin_counts) == 200
    assert binned.spearman_rho > 0.8
    flat = error_vs_distance(distance, np.full(200, 0.1), id_test_force_mae=0.1, bins=10)
    assert flat.extrapolation_distance is None


def test_gmd_distance_on_a_trained_run(trained_runs, tmp_path):
    _, run_dirs = trained_runs
    result = gmd("distance", run_dirs[0], "--out", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "d" / "distance.json").read_text())
    assert summary["soap"]["species"] == [1, 6] and summary["manifold"]["k"] == 1
    rows = (tmp_path / "d" / "distances.csv").read_text().splitlines()
    assert rows[0].startswith("split,smiles") and len(rows) > 2
    assert (tmp_path / "d" / "error_vs_distance.png").stat().st_size > 0
    # OOD molecules (propane) are farther from training (methane, ethane) than ID frames
    splits = summary["splits"]
    assert splits["ood_test"]["max"]["median"] > splits["id_test"]["max"]["median"]


def test_gmd_distance_refuses_a_run_without_predictions_or_config(trained_runs, tmp_path):
    import shutil

    _, run_dirs = trained_runs
    copy = tmp_path / "run"
    shutil.copytree(run_dirs[0], copy, ignore=shutil.ignore_patterns("predictions_*"))
    result = gmd("distance", copy)
    assert result.returncode == 2
    assert "no predictions for id_test" in result.stderr and "gmd evaluate" in result.stderr
    (copy / "config.json").write_text("{}")
    result = gmd("distance", copy)
    assert result.returncode == 2 and "not a valid run config" in result.stderr


def test_gmd_distance_with_the_models_own_features(trained_runs, tmp_path):
    _, run_dirs = trained_runs
    result = gmd("distance", run_dirs[2], "--descriptor", "model", "--k", "2",
                 "--out", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "m" / "distance.json").read_text())
    assert summary["descriptor"] == "model" and summary["soap"] is None
    assert summary["manifold"]["k"] == 2 and summary["model"] == "mace"
    assert all(v > 0 for v in summary["median_training_spacing"].values())
