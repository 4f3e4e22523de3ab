"""Batch diversity, per-seed pools, the no-label control and near-copy detection."""

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.spatial.transform import Rotation

from gmdbench.active.acquisition import pick_largest, pick_top_in_clusters
from gmdbench.active.overlap import aligned_rmsd, near_copies
from gmdbench.pipeline.active_learning import ActiveLearningConfig, pick, seed_candidates

MODEL = {"name": "schnet", "training": {"epochs": 1}}


def test_top_in_clusters_spreads_a_batch_that_top_n_spends_on_one_region():
    # two regions of candidates: region A holds the 6 best scores, region B slightly lower
    features = np.vstack([np.zeros((6, 2)), np.full((6, 2), 10.0)])
    features += np.random.default_rng(0).normal(scale=0.01, size=features.shape)
    scores = np.array([9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8], dtype=float)
    candidates = np.arange(100, 112)
    top = pick_largest(candidates, scores, 2)
    assert set(top) <= set(range(100, 106))  # both from region A
    spread = pick_top_in_clusters(candidates, scores, features, 2, seed=0)
    assert len(set(spread) & set(range(100, 106))) == 1
    assert len(set(spread) & set(range(106, 112))) == 1
    assert pick_top_in_clusters(candidates, scores, features, 2, seed=0).tolist() == \
        spread.tolist()  # seeded


def test_per_seed_pools_differ_by_seed_and_are_shared_by_rules():
    config = ActiveLearningConfig(name="x", task="t", model=MODEL,
                                  pool={"per_seed": 10, "trajectories": 2})
    a, b = seed_candidates(config, 40, 0), seed_candidates(config, 40, 1)
    assert len(a) == len(b) == 10 and not np.array_equal(a, b)
    assert np.array_equal(a, seed_candidates(config, 40, 0))
    whole = ActiveLearningConfig(name="x", task="t", model=MODEL)
    assert np.array_equal(seed_candidates(whole, 40, 0), np.arange(40))


def test_no_label_control_picks_nothing_and_needs_fine_tuning():
    assert pick("no_label", np.arange(5), 3, 0, 1, [], None, None).size == 0
    ActiveLearningConfig(name="x", task="t", model=MODEL, rules=["random", "no_label"])
    with pytest.raises(ValidationError, match="fine-tune"):
        ActiveLearningConfig(name="x", task="t", model=MODEL, update="retrain",
                             rules=["random", "no_label"])
    with pytest.raises(ValidationError, match="baseline_rule"):
        ActiveLearningConfig(name="x", task="t", model=MODEL, rules=["distance"])


def test_aligned_rmsd_sees_through_rotation_and_translation():
    rng = np.random.default_rng(1)
    frame = rng.normal(size=(9, 3))
    moved = Rotation.random(random_state=2).apply(frame) + np.array([3.0, -1.0, 0.5])
    assert aligned_rmsd(frame[None], moved)[0] == pytest.approx(0.0, abs=1e-9)
    shifted = frame.copy()
    shifted[0] += [0.3, 0.0, 0.0]  # one atom off by 0.3 A
    value = aligned_rmsd(frame[None], shifted)[0]
    assert 0.0 < value < 0.3 / np.sqrt(9) + 1e-12  # alignment can only lower the plain RMSD
    mirrored = frame * np.array([-1.0, 1.0, 1.0])  # a reflection is no rigid motion
    assert aligned_rmsd(frame[None], mirrored)[0] > 0.1


def test_near_copies_catch_what_an_exact_match_misses():
    rng = np.random.default_rng(3)
    numbers = np.array([6, 1, 1, 1, 1])
    base = [("base/0", numbers, rng.normal(size=(5, 3)))]
    nudged = base[0][2] + 1e-5  # passes a hash of rounded coordinates
    far = rng.normal(size=(5, 3))
    other_molecule = np.array([8, 1, 1, 1, 1])
    found = near_copies([("pool/0", numbers, nudged), ("pool/1", numbers, far),
                         ("pool/2", other_molecule, nudged)], base, 0.05)
    assert [key for key, _ in found] == ["pool/0"]
