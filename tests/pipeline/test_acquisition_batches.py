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


def test_aligned_rmsd_equals_scipys_kabsch_for_each_frame_of_a_stack():
    """Against an independent Kabsch (scipy's align_vectors, whose rssd over sqrt(N) is the
    RMSD), frame by frame of a stack: generic, noisy rotated copies and planar frames (their
    correlation matrix is singular, where the reflection sign must not zero a value)."""
    rng = np.random.default_rng(5)
    probe = rng.normal(size=(7, 3))
    planar = probe.copy()
    planar[:, 2] = 0.0
    stack = np.stack([rng.normal(size=(7, 3)),
                      Rotation.random(random_state=6).apply(probe) + 0.1 * rng.normal(size=(7, 3)),
                      planar * 1.3 + 2.0, planar[::-1].copy()])
    for target in (probe, planar):
        values = aligned_rmsd(stack, target)
        for frame, value in zip(stack, values, strict=True):
            a, b = frame - frame.mean(axis=0), target - target.mean(axis=0)
            _, rssd = Rotation.align_vectors(a, b)
            assert value == pytest.approx(rssd / np.sqrt(len(target)), abs=1e-9)


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
    # a candidate of a molecule the others lack is passed over, and the next still checked
    assert [key for key, _ in near_copies([("pool/2", other_molecule, nudged),
                                           ("pool/0", numbers, nudged)], base, 0.05)] == ["pool/0"]
    assert found[0][1] == pytest.approx(0.0, abs=1e-6)  # a pure translation (sqrt of rounding)
    # the threshold is strict, and the nearest of several frames counts
    shifted = base[0][2].copy()
    shifted[0, 0] += 0.5
    value = aligned_rmsd(base[0][2][None], shifted)[0]
    two = [*base, ("base/1", numbers, far)]
    assert near_copies([("pool/3", numbers, shifted)], two, value) == []
    assert near_copies([("pool/3", numbers, shifted)], two, value + 1e-9) == \
        [("pool/3", pytest.approx(value))]


# -- each rule by hand: the exact picks, ties, too few candidates, the empty training set ------


def test_random_rule_draws_exactly_numpys_seeded_choice_and_all_when_short():
    from gmdbench.active.acquisition import pick_random

    candidates = np.array([3, 5, 8, 13, 21, 34, 55])
    expected = np.sort(np.random.default_rng([4, 2]).choice(candidates, size=3, replace=False))
    assert pick_random(candidates, 3, seed=4, round_index=2).tolist() == expected.tolist()
    assert pick_random(candidates, 3, seed=4, round_index=3).tolist() != expected.tolist() or \
        pick_random(candidates, 3, seed=5, round_index=2).tolist() != expected.tolist()
    # asked for more than there are: every candidate once, in pool order
    assert pick_random(candidates[:2], 5, seed=0, round_index=0).tolist() == [3, 5]


def test_largest_rule_breaks_ties_by_pool_order_and_returns_sorted_ids():
    candidates = np.array([40, 30, 20, 10])
    scores = np.array([1.0, 2.0, 2.0, 2.0])  # a three-way tie for the top
    assert pick_largest(candidates, scores, 2).tolist() == [20, 30]  # first two in pool order
    assert pick_largest(candidates, scores, 9).tolist() == [10, 20, 30, 40]
    assert pick_largest(candidates, -scores, 1).tolist() == [40]
    # many ties (past the size where numpy's default sort is an insertion sort): still the
    # first in pool order within each score
    scores = np.random.default_rng(1).integers(0, 3, size=50).astype(float)
    candidates = np.arange(1000, 1050)
    top = np.flatnonzero(scores == 2.0)
    assert pick_largest(candidates, scores, 5).tolist() == (1000 + top[:5]).tolist()


def test_farthest_points_by_hand_with_and_without_a_training_set():
    from gmdbench.active.acquisition import pick_farthest_points

    features = np.array([[1.0, 0.0], [5.0, 0.0], [6.0, 0.0], [0.0, 3.0]])
    candidates = np.array([7, 8, 9, 10])
    # from the origin: 6 (id 9) is farthest; then distances to {origin, 6}: 1, 1, 0, 3 -> id 10;
    # then 1, 1, -, - -> the first of the tie, id 7
    labelled = np.zeros((1, 2))
    assert pick_farthest_points(candidates, features, labelled, 1).tolist() == [9]
    assert pick_farthest_points(candidates, features, labelled, 2).tolist() == [9, 10]
    assert pick_farthest_points(candidates, features, labelled, 3).tolist() == [7, 9, 10]
    assert pick_farthest_points(candidates, features, labelled, 9).tolist() == [7, 8, 9, 10]
    # no training frames yet: the first candidate, then the farthest from it (id 9), then the
    # farthest from both: [0, 3] is 3.16 from [1, 0] and 6.7 from [6, 0], [5, 0] is 1 -> id 10
    assert pick_farthest_points(candidates, features, np.empty((0, 2)), 3).tolist() == \
        [7, 9, 10]


def test_top_in_clusters_by_hand_short_lists_and_duplicates():
    from gmdbench.active.acquisition import SHORTLIST

    assert SHORTLIST == 4
    # three well separated pairs; scores rank one member of each pair above the other
    features = np.array([[0.0, 0.0], [0.1, 0.0], [9.0, 0.0], [9.1, 0.0], [0.0, 9.0],
                         [0.0, 9.1]])
    scores = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    candidates = np.arange(50, 56)
    assert pick_top_in_clusters(candidates, scores, features, 3, seed=0).tolist() == [50, 52, 54]
    # n = 1: the shortlist is the 4 best, one cluster, its best member
    assert pick_top_in_clusters(candidates, scores, features, 1, seed=0).tolist() == [50]
    # n at least the candidates: every candidate, no clustering
    assert pick_top_in_clusters(candidates[:2], scores[:2], features[:2], 2, seed=0).tolist() \
        == [50, 51]
    # identical rows: k-means finds fewer clusters than asked, the batch is filled by score
    same = np.zeros((6, 2))
    assert pick_top_in_clusters(candidates, scores, same, 3, seed=0).tolist() == [50, 51, 52]


def test_top_in_clusters_clusters_only_the_shortlist_of_four_per_pick():
    """Ten candidates, n = 2: the shortlist is the 8 best, all near the origin in two tight
    groups, so both picks come from there; the two far, low-scored frames (a region k-means
    would split off at once) are outside the shortlist and never picked."""
    near = [[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [0.1, 0.1],
            [1.0, 0.0], [1.1, 0.0], [1.0, 0.1], [1.1, 0.1]]
    features = np.array([*near, [50.0, 50.0], [50.1, 50.0]])
    scores = np.array([10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    candidates = np.arange(100, 110)
    assert pick_top_in_clusters(candidates, scores, features, 2, seed=0).tolist() == [100, 104]


def test_top_in_clusters_fills_several_missing_clusters_by_score():
    # identical rows, n = 4: k-means finds one cluster, three picks are filled by score
    same = np.zeros((6, 2))
    picks = pick_top_in_clusters(np.arange(50, 56), np.arange(6.0, 0.0, -1), same, 4, seed=0)
    assert picks.tolist() == [50, 51, 52, 53]


def test_farthest_points_never_picks_a_frame_twice_among_copies():
    from gmdbench.active.acquisition import pick_farthest_points

    copies = np.ones((4, 3))  # every candidate at distance 0 from every other
    picks = pick_farthest_points(np.array([7, 8, 9, 10]), copies, np.empty((0, 3)), 3)
    assert picks.tolist() == [7, 8, 9]
