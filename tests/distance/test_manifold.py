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
    trajectories = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    return TrainingManifold(features, numbers, ManifoldSettings(k=k), trajectories)


def _distance(manifold, atoms):
    atom = manifold.atom_distances(soap_descriptors([atoms], SOAP), atoms.numbers)
    maxima, means = frame_distances(atom, np.array([len(atoms)]))
    return maxima[0], means[0]


def test_a_training_frame_is_at_distance_zero_from_its_training_set():
    frames = _training_frames()
    manifold = _manifold(frames)
    for atoms in frames[:3]:
        assert _distance(manifold, atoms) == (pytest.approx(0.0, abs=1e-3),) * 2
    # the normaliser is the spacing between training trajectories, so it is positive
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


def _ornstein_uhlenbeck(rng, steps: int, stride: int, dim: int = 16, tau: float = 200.0
                        ) -> np.ndarray:
    """A stationary trajectory in feature space (the environment of one atom along MD),
    saved every ``stride`` steps: consecutive frames are close, distant ones independent."""
    decay = np.exp(-1.0 / tau)
    x = rng.normal(size=dim)
    saved = []
    for step in range(steps):
        x = decay * x + np.sqrt(1 - decay**2) * rng.normal(size=dim)
        if step % stride == 0:
            saved.append(x.copy())
    return np.array(saved)


def _id_test_median(stride: int) -> float:
    rng = np.random.default_rng(11)
    train = [_ornstein_uhlenbeck(rng, 2000, stride) for _ in range(6)]
    id_test = _ornstein_uhlenbeck(rng, 2000, 20)
    features = np.concatenate(train)
    trajectories = np.repeat(np.arange(len(train)), [len(t) for t in train])
    manifold = TrainingManifold(features, np.full(len(features), 6), ManifoldSettings(),
                                trajectories)
    return float(np.median(manifold.atom_distances(id_test, np.full(len(id_test), 6))))


def test_the_unit_is_the_spacing_between_trajectories_not_the_md_stride():
    """Normalised by each point's nearest neighbour (the adjacent frame), id_test sat at 2 and
    moved with the stride; normalised by the distance to other trajectories it sits near 1,
    and halving the training stride moves it by less than 10%."""
    coarse, fine = _id_test_median(stride=20), _id_test_median(stride=10)
    assert 0.5 <= coarse <= 2.0 and 0.5 <= fine <= 2.0, (coarse, fine)
    assert abs(fine - coarse) / coarse < 0.10, (coarse, fine)


def test_one_training_trajectory_cannot_define_the_unit():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="one training trajectory"):
        TrainingManifold(rng.normal(size=(20, 4)), np.full(20, 1), ManifoldSettings(),
                         np.zeros(20))
