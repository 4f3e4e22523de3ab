"""One batch format for every model: flat tensors built once, gathered without Python loops.

Edges follow ASE's neighbour-list convention: edge ``e`` joins centre ``i = edge_index[0, e]`` to
neighbour ``j = edge_index[1, e]`` with vector ``pos[j] - pos[i] + shifts[e] @ cell``, where
``shifts`` are integer cell offsets (all zero for molecules). Each adapter translates this into
its library's own convention in one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list
from scipy.spatial import cKDTree

from gmdbench.data.store import DatasetStore
from gmdbench.errors import GmdError

EDGE_BUDGET_VARIABLE = "GMD_EVAL_MAX_EDGES"
# measured by bench/eval_memory.py on the cr_sb2te3 suite (84-atom cells): peak RSS grows
# ~0.12-0.15 MB per edge in a batch (CHGNet 7.9 GB at 64k edges, SevenNet-0 6.3 GB at 43k);
# 25k keeps every model of that suite near 4 GB (measured at 25k: SevenNet-0 4.2 GB, CHGNet
# 4.0 GB, MACE 1.1 GB), and molecules (32 frames ~10^4 edges) below it
DEFAULT_EDGE_BUDGET = 25_000


def evaluation_edge_budget() -> int:
    """Most edges one prediction batch holds: ``GMD_EVAL_MAX_EDGES`` or the default, which
    keeps a suite's evaluation under 8 GB (bench/eval_memory.py measures it). An environment
    variable, not a run option, because batching changes memory, not results (a frame's
    prediction does not depend on its batch neighbours), so it must not enter a run's hash;
    and it reaches every place that predicts (evaluation, learning curves, active learning)
    and Dask workers started from the same shell."""
    text = os.environ.get(EDGE_BUDGET_VARIABLE, "").strip()
    if not text:
        return DEFAULT_EDGE_BUDGET
    if not text.isdigit() or int(text) < 1:
        raise GmdError(f"{EDGE_BUDGET_VARIABLE}={text!r} is not a positive whole number of edges")
    return int(text)


@dataclass
class Batch:
    """Structures concatenated along atoms; ``batch[a]`` is the structure of atom ``a``."""

    positions: torch.Tensor  # (n_atoms, 3)
    numbers: torch.Tensor  # (n_atoms,) long
    cell: torch.Tensor  # (n_structures, 3, 3)
    pbc: torch.Tensor  # (n_structures, 3) bool
    edge_index: torch.Tensor  # (2, n_edges) long, [centre, neighbour]
    shifts: torch.Tensor  # (n_edges, 3) integer cell offsets, float dtype
    batch: torch.Tensor  # (n_atoms,) long
    n_atoms: torch.Tensor  # (n_structures,) long
    energy: torch.Tensor | None = None  # (n_structures,) reference, eV
    forces: torch.Tensor | None = None  # (n_atoms, 3) reference, eV/A
    frame_index: torch.Tensor | None = None  # (n_structures,) row in the source GraphSet

    @property
    def n_structures(self) -> int:
        return int(self.n_atoms.shape[0])

    def edge_vectors(self) -> torch.Tensor:
        """pos[j] - pos[i] + shift @ cell, differentiable in positions."""
        i, j = self.edge_index
        cell_of_edge = self.cell[self.batch[i]]
        offsets = torch.einsum("ek,ekl->el", self.shifts, cell_of_edge)
        return self.positions[j] - self.positions[i] + offsets

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
           ) -> Batch:
        """Floating tensors to ``dtype``, everything to ``device``."""
        changes = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
            if device is not None:
                value = value.to(device)
            changes[field.name] = value
        return replace(self, **changes)


def neighbour_graph(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Edge index (2, E) and integer shifts (E, 3) of all pairs within ``cutoff``, both
    directions, sorted by (centre, neighbour).

    A molecule (no periodic direction) takes scipy's k-d tree, ~30x faster than ASE's general
    periodic neighbour list on these sizes (graph building was 15% of batched prediction);
    periodic cells take ASE's ``neighbor_list``. Both give the same set of edges.
    """
    if not atoms.pbc.any():
        pairs = cKDTree(atoms.positions).query_pairs(float(cutoff), output_type="ndarray")
        i = np.concatenate([pairs[:, 0], pairs[:, 1]])
        j = np.concatenate([pairs[:, 1], pairs[:, 0]])
        order = np.lexsort((j, i))
        edges = np.stack([i[order], j[order]]).astype(np.int64)
        return edges, np.zeros((edges.shape[1], 3))
    i, j, shifts = neighbor_list("ijS", atoms, float(cutoff))
    order = np.lexsort((j, i))
    return np.stack([i[order], j[order]]).astype(np.int64), shifts[order].astype(np.float64)


class GraphSet:
    """A set of structures with their graphs, stored as flat arrays with offsets.

    Gathering a batch is index arithmetic on these arrays (no per-structure Python objects),
    so the training loop's cost is the model's, not the data pipeline's.
    """

    def __init__(self, structures: Sequence[Atoms], cutoff: float,
                 energies: Sequence[float] | None = None,
                 forces: Sequence[np.ndarray] | None = None):
        self.cutoff = float(cutoff)
        n_atoms, n_edges, numbers, positions, cells, pbcs, edges, shifts = ([] for _ in range(8))
        for atoms in structures:
            edge_index, edge_shifts = neighbour_graph(atoms, cutoff)
            n_atoms.append(len(atoms))
            n_edges.append(edge_index.shape[1])
            numbers.append(atoms.numbers)
            positions.append(atoms.positions)
            cells.append(atoms.cell.array)
            pbcs.append(atoms.pbc)
            edges.append(edge_index)
            shifts.append(edge_shifts)
        self.n_atoms = np.asarray(n_atoms, dtype=np.int64)
        self.n_edges = np.asarray(n_edges, dtype=np.int64)
        self.atom_ptr = np.concatenate([[0], np.cumsum(self.n_atoms)])
        self.edge_ptr = np.concatenate([[0], np.cumsum(self.n_edges)])
        self.numbers = np.concatenate(numbers).astype(np.int64)
        self.positions = np.concatenate(positions).astype(np.float64)
        self.cell = np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3)
        self.pbc = np.asarray(pbcs, dtype=bool).reshape(-1, 3)
        self.edge_index = np.concatenate(edges, axis=1) if edges else np.zeros((2, 0), np.int64)
        self.shifts = np.concatenate(shifts) if shifts else np.zeros((0, 3))
        self.energy = None if energies is None else np.asarray(energies, dtype=np.float64)
        self.forces = None if forces is None else np.concatenate(forces).astype(np.float64)

    def __len__(self) -> int:
        return int(self.n_atoms.shape[0])

    def structures(self, index: Sequence[int] | None = None) -> list[Atoms]:
        """The structures (no labels) as ase.Atoms."""
        index = range(len(self)) if index is None else index
        result = []
        for k in index:
            a, b = self.atom_ptr[k], self.atom_ptr[k + 1]
            result.append(Atoms(numbers=self.numbers[a:b], positions=self.positions[a:b],
                                cell=self.cell[k], pbc=self.pbc[k]))
        return result

    def subset(self, index: Sequence[int]) -> GraphSet:
        """A new GraphSet of the structures ``index``, with their labels."""
        energies = None if self.energy is None else self.energy[np.asarray(index)]
        forces = None if self.forces is None else [
            self.forces[self.atom_ptr[k]:self.atom_ptr[k + 1]] for k in index]
        return GraphSet(self.structures(index), self.cutoff, energies=energies, forces=forces)

    @property
    def elements(self) -> list[int]:
        return sorted({int(z) for z in np.unique(self.numbers)})

    def batches(self, batch_size: int, dtype: torch.dtype = torch.float32,
                order: np.ndarray | None = None, device: torch.device | str | None = None,
                max_edges: int | None = None) -> Iterator[tuple[np.ndarray, Batch]]:
        """(frame indices, Batch on ``device``) of consecutive frames in ``order`` (default:
        stored order), at most ``batch_size`` of them and, when ``max_edges`` is given, at most
        that many edges (a frame larger than the budget goes alone): the one batching loop of
        training, prediction and analysis. The edge budget is what bounds memory, since a
        message-passing model's activations grow with edges, not frames: 32 molecules of 20
        atoms hold ~10^4 edges, 32 periodic cells of 84 atoms at 5 A ~4 x 10^5."""
        order = np.arange(len(self)) if order is None else np.asarray(order)
        for index in self._batch_indices(order, batch_size, max_edges):
            yield index, self.gather(index, dtype=dtype, device=device)

    def _batch_indices(self, order: np.ndarray, batch_size: int, max_edges: int | None
                       ) -> Iterator[np.ndarray]:
        if max_edges is None:
            for start in range(0, len(order), batch_size):
                yield order[start:start + batch_size]
            return
        start, edges = 0, 0
        for position, frame in enumerate(order):
            frame_edges = int(self.n_edges[frame])
            if position > start and (position - start == batch_size
                                     or edges + frame_edges > max_edges):
                yield order[start:position]
                start, edges = position, 0
            edges += frame_edges
        if start < len(order):
            yield order[start:]

    def gather(self, index: Sequence[int] | np.ndarray, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> Batch:
        """The structures ``index`` as one Batch, its tensors made on ``device`` (one copy from
        host memory per tensor, none per structure)."""
        index = np.asarray(index, dtype=np.int64)
        n_atoms = self.n_atoms[index]
        n_edges = self.n_edges[index]
        atoms = _ranges(self.atom_ptr[index], n_atoms)
        edges = _ranges(self.edge_ptr[index], n_edges)
        new_atom_start = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
        # stored edge indices are local to their structure: add its start in the batch
        edge_offset = np.repeat(new_atom_start, n_edges)
        batch = np.repeat(np.arange(len(index)), n_atoms)

        def tensor(array: np.ndarray, floating: bool = True) -> torch.Tensor:
            return torch.as_tensor(array, dtype=dtype if floating else None, device=device)

        return Batch(
            positions=tensor(self.positions[atoms]),
            numbers=tensor(self.numbers[atoms], False),
            cell=tensor(self.cell[index]),
            pbc=tensor(self.pbc[index], False),
            edge_index=tensor(self.edge_index[:, edges] + edge_offset, False),
            shifts=tensor(self.shifts[edges]),
            batch=tensor(batch, False),
            n_atoms=tensor(n_atoms, False),
            energy=None if self.energy is None else tensor(self.energy[index]),
            forces=None if self.forces is None else tensor(self.forces[atoms]),
            frame_index=tensor(index, False),
        )


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, start + length) for each pair, vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    block_start = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return block_start + np.arange(total)


def batch_from_atoms(structures: Sequence[Atoms], cutoff: float,
                     dtype: torch.dtype = torch.float32) -> Batch:
    """A Batch of unlabelled structures (for calculators and analysis)."""
    return GraphSet(structures, cutoff).gather(np.arange(len(structures)), dtype=dtype)


def graphset_from_store(store: DatasetStore, split: str, cutoff: float
                        ) -> tuple[GraphSet, list[dict]]:
    """A split of a dataset as a GraphSet, and each frame's keys (smiles, trajectory, frame)."""
    return graphset_from_rows(list(store.rows(split=split)), cutoff)


def graphset_from_rows(rows: Sequence[Any], cutoff: float) -> tuple[GraphSet, list[dict]]:
    """Dataset rows (any selection) as a GraphSet in (trajectory, frame) order, with keys."""
    rows = sorted(rows, key=lambda r: (r.trajectory_id, r.frame))
    structures = [Atoms(numbers=r.numbers, positions=r.positions, cell=r.cell, pbc=r.pbc)
                  for r in rows]
    graphs = GraphSet(structures, cutoff, energies=[r.energy for r in rows],
                      forces=[r.forces for r in rows])
    return graphs, [dict(r.key_value_pairs) for r in rows]
