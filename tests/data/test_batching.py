"""Batching by an edge budget: which frames go together, and that it changes no prediction."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from gmdbench.data.graphs import (
    DEFAULT_EDGE_BUDGET,
    EDGE_BUDGET_VARIABLE,
    GraphSet,
    evaluation_edge_budget,
)
from gmdbench.errors import GmdError
from gmdbench.evaluation.evaluate import predict
from gmdbench.models.base import Potential
from gmdbench.models.registry import build_model, model_config


def _frames() -> list[Atoms]:
    # H2 (2 edges), CH4 (20), C6H6 (114 at 4 A), H2O (6), CH4 (20)
    return [molecule(name) for name in ("H2", "CH4", "C6H6", "H2O", "CH4")]


def _groups(graphs: GraphSet, batch_size: int, max_edges: int | None) -> list[list[int]]:
    return [index.tolist() for index, _ in graphs.batches(batch_size, max_edges=max_edges)]


def test_edge_budget_groups_consecutive_frames_and_lets_a_large_one_go_alone():
    graphs = GraphSet(_frames(), cutoff=4.0)
    edges = graphs.n_edges.tolist()
    assert edges == [2, 20, 114, 6, 20]
    # by frames only: fours
    assert _groups(graphs, 4, None) == [[0, 1, 2, 3], [4]]
    # 22 edges fit (2 + 20); benzene exceeds the budget alone; 6 + 20 = 26 > 22
    assert _groups(graphs, 4, 22) == [[0, 1], [2], [3], [4]]
    assert _groups(graphs, 4, 26) == [[0, 1], [2], [3, 4]]
    # the frame count still caps a batch under a generous budget
    assert _groups(graphs, 2, 10 ** 6) == [[0, 1], [2, 3], [4]]
    # every frame appears once, in order, whatever the budget
    for budget in (1, 21, 150, 10 ** 6):
        flat = [i for group in _groups(graphs, 3, budget) for i in group]
        assert flat == [0, 1, 2, 3, 4]
        for group in _groups(graphs, 3, budget):
            assert len(group) == 1 or sum(edges[i] for i in group) <= budget


def test_edge_budget_follows_a_given_order():
    graphs = GraphSet(_frames(), cutoff=4.0)
    order = np.array([4, 2, 0, 1, 3])
    assert [i.tolist() for i, _ in graphs.batches(5, order=order, max_edges=30)] == [
        [4], [2], [0, 1, 3]]


def test_predictions_do_not_depend_on_the_edge_budget():
    frames = _frames()
    rng = np.random.default_rng(0)
    for atoms in frames:
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
    graphs = GraphSet(frames, cutoff=4.0, energies=np.zeros(len(frames)),
                      forces=[np.zeros((len(a), 3)) for a in frames])
    keys = [{"smiles": str(a.symbols), "trajectory_id": "t", "frame": i}
            for i, a in enumerate(frames)]
    torch.manual_seed(0)
    with torch.random.fork_rng():
        network = build_model(model_config("schnet", {"cutoff": 4.0}), graphs.elements,
                              {"avg_num_neighbors": 6.0})
    potential = Potential(network, {}).to(torch.float64)
    whole = predict(potential, graphs, keys, dtype=torch.float64, max_edges=10 ** 6)
    split = predict(potential, graphs, keys, dtype=torch.float64, max_edges=1)
    np.testing.assert_allclose(split.energy, whole.energy, rtol=0, atol=1e-10)
    np.testing.assert_allclose(split.forces, whole.forces, rtol=0, atol=1e-10)
    assert np.abs(whole.forces).max() > 0  # a model that predicts something


def test_edge_budget_comes_from_the_environment_or_the_default(monkeypatch):
    monkeypatch.delenv(EDGE_BUDGET_VARIABLE, raising=False)
    assert evaluation_edge_budget() == DEFAULT_EDGE_BUDGET
    monkeypatch.setenv(EDGE_BUDGET_VARIABLE, "5000")
    assert evaluation_edge_budget() == 5000
    for bad in ("0", "-3", "1e5", "lots"):
        monkeypatch.setenv(EDGE_BUDGET_VARIABLE, bad)
        with pytest.raises(GmdError, match=EDGE_BUDGET_VARIABLE):
            evaluation_edge_budget()
