"""Routing metrics of a DeepSet-MoE: who does the work, and does it follow chemistry?

- **expert load**: share of edges (and of atoms, by each atom's dominant expert) per expert;
- **routing entropy** (bits): of the load distribution (log2 K when experts share work evenly,
  0 when one expert does everything) and the mean per-edge entropy of the routing weights (0 for
  the hard identity and spatial routers);
- **mutual information** (bits) between expert choice and fragment membership (the task's
  SMARTS; a hydrogen belongs to the fragments of the heavy atom it is bonded to): how much
  knowing the expert tells about the fragment. Routing is decided per edge, so the main figure
  pairs each edge's expert (its largest weight) with its central atom's fragment; the atom-level
  figure pairs each atom's dominant expert (most routing mass over its edges) with its fragment;
- **energy share** of each expert by integrated gradients: the experts' messages are scaled by
  s in [0, 1]^K and E(1) - E(0) = sum_k IG_k (completeness, to the accuracy of the midpoint
  rule on ``steps`` points, 16 by default), so IG_k is expert k's part of the energy above the
  no-message baseline; shares are IG_k / sum_k |IG_k| (signed). The network works in units of
  the potential's force scale, so IG values are multiplied by that scale to be in eV.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from scipy.stats import entropy
from sklearn.metrics import mutual_info_score

from gmdbench.chem.fragments import fragment_atom_labels
from gmdbench.chem.molecules import parse_smiles
from gmdbench.data.graphs import Batch, GraphSet

NO_FRAGMENT = "none"


def entropy_bits(probabilities: np.ndarray) -> float:
    """Shannon entropy in bits of a distribution (scipy; zero entries contribute nothing)."""
    p = np.asarray(probabilities, dtype=float)
    return float(entropy(p, base=2)) if p.sum() > 0 else 0.0


def mutual_information_bits(first: np.ndarray, second: np.ndarray) -> float:
    """I(X; Y) in bits from paired samples of two discrete variables (plug-in estimate,
    scikit-learn's ``mutual_info_score`` in nats converted to bits)."""
    first, second = np.asarray(first), np.asarray(second)
    if first.shape != second.shape or first.size == 0:
        raise ValueError("mutual information needs two equally long, non-empty label arrays")
    return float(mutual_info_score(first, second) / np.log(2))


@lru_cache(maxsize=256)
def atom_fragment_labels(smiles: str, fragments: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """One label per atom (explicit H, RDKit order): its fragments joined by '+', or 'none'."""
    labels = fragment_atom_labels(smiles, dict(fragments))
    mol = Chem.AddHs(parse_smiles(smiles))
    result = []
    for atom in mol.GetAtoms():
        own = labels[atom.GetIdx()]
        if not own and atom.GetAtomicNum() == 1 and atom.GetDegree() == 1:
            own = labels[atom.GetNeighbors()[0].GetIdx()]
        result.append("+".join(sorted(own)) if own else NO_FRAGMENT)
    return tuple(result)


def atom_routing(weights: torch.Tensor, centres: torch.Tensor, n_atoms: int) -> np.ndarray:
    """Routing mass of each atom's edges per expert (n_atoms, K), rows summing to 1."""
    mass = weights.new_zeros((n_atoms, weights.shape[1])).index_add(0, centres, weights)
    total = mass.sum(-1, keepdim=True)
    return (mass / torch.where(total > 0, total, torch.ones_like(total))).cpu().numpy()


def expert_energy_ig(network: torch.nn.Module, batch: Batch, steps: int = 16) -> np.ndarray:
    """Integrated gradients of the network energy (its own units) with respect to per-expert
    message scales, by the midpoint rule on ``steps`` points."""
    k = network.num_experts
    total = np.zeros(k)
    for alpha in (np.arange(steps) + 0.5) / steps:
        scale = torch.full((k,), float(alpha), dtype=batch.positions.dtype,
                           device=batch.positions.device, requires_grad=True)
        energy = network(batch, expert_scale=scale, compute_forces=False)["energy"]
        (gradient,) = torch.autograd.grad(energy.sum(), scale)
        total += gradient.detach().cpu().numpy() / steps
    return total


def routing_metrics(network: torch.nn.Module, graphs: GraphSet, keys: list[dict],
                    fragments: dict[str, str], batch_size: int = 32,
                    dtype: torch.dtype = torch.float32, energy_share_frames: int = 64,
                    energy_scale: float = 1.0) -> dict:
    """Routing metrics of one split. Load, entropies and MI use every frame; the energy shares
    (16 extra passes per frame) use about ``energy_share_frames`` frames in batches spread
    evenly over the split (frames are ordered by molecule, so the first ones would be biased).
    ``energy_scale``: eV per network energy unit (the Potential's ``scale``)."""
    network.eval()
    k = network.num_experts
    edge_load = np.zeros(k)
    edge_entropy, n_edges = 0.0, 0
    ig = np.zeros(k)
    experts, labels, edge_experts, edge_labels = [], [], [], []
    ig_frames = 0
    n_batches = -(-len(graphs) // batch_size)
    ig_stride = max(1, n_batches // max(1, -(-energy_share_frames // batch_size)))
    fragment_items = tuple(sorted(fragments.items()))
    device = next(network.buffers()).device
    for number, (index, batch) in enumerate(graphs.batches(batch_size, dtype, device=device)):
        batch.positions.requires_grad_(True)
        weights = network(batch)["routing"]
        edge_load += weights.sum(0).cpu().numpy()
        w = weights.cpu().numpy()
        edge_entropy += float(-(np.where(w > 0, w * np.log2(np.where(w > 0, w, 1)), 0)).sum())
        n_edges += w.shape[0]
        per_atom = atom_routing(weights, batch.edge_index[0], batch.positions.shape[0])
        experts.append(per_atom.argmax(-1))
        batch_labels = []
        for frame in index:
            batch_labels.extend(atom_fragment_labels(keys[frame]["smiles"], fragment_items))
        labels.extend(batch_labels)
        edge_experts.append(w.argmax(-1))
        edge_labels.append(np.array(batch_labels)[batch.edge_index[0].cpu().numpy()])
        if number % ig_stride == 0:
            ig += expert_energy_ig(network, batch)
            ig_frames += len(index)
    experts_all = np.concatenate(experts)
    atom_load = np.bincount(experts_all, minlength=k) / experts_all.size
    load = edge_load / max(edge_load.sum(), 1e-12)
    return {
        "n_experts": k,
        "expert_load_edges": load.tolist(),
        "expert_load_atoms": atom_load.tolist(),
        "load_entropy_bits": entropy_bits(load),
        "max_load_entropy_bits": float(np.log2(k)),
        "mean_edge_entropy_bits": edge_entropy / max(n_edges, 1),
        "mi_expert_fragment_bits": mutual_information_bits(np.concatenate(edge_experts),
                                                           np.concatenate(edge_labels)),
        "mi_atom_expert_fragment_bits": mutual_information_bits(experts_all, np.array(labels)),
        "fragment_entropy_bits": entropy_bits(
            np.array(list(Counter(labels).values())) / len(labels)),
        "expert_energy_share": (ig / max(np.abs(ig).sum(), 1e-12)).tolist(),
        "expert_energy_ig_eV_per_frame": (energy_scale * ig / max(ig_frames, 1)).tolist(),
        "energy_share_midpoint_points": 16,
        "energy_share_frames": ig_frames,
    }


def flat_routing_metrics(metrics: dict) -> dict[str, float]:
    """The scalar view stored in the results store (one value per metric name)."""
    flat = {key: float(metrics[key]) for key in
            ("load_entropy_bits", "mean_edge_entropy_bits", "mi_expert_fragment_bits",
             "mi_atom_expert_fragment_bits", "fragment_entropy_bits")}
    for e, (load, share) in enumerate(zip(metrics["expert_load_edges"],
                                          metrics["expert_energy_share"], strict=True)):
        flat[f"expert{e}_load"] = float(load)
        flat[f"expert{e}_energy_share"] = float(share)
    return flat


def plot_atom_experts(network: torch.nn.Module, frames: dict[str, tuple[GraphSet, int, str]],
                      out: Path, dtype: torch.dtype = torch.float32) -> Path:
    """Atoms of one ID and one OOD molecule, coloured by their dominant expert."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ase.data import chemical_symbols

    network.eval()
    k = network.num_experts
    colours = plt.get_cmap("tab10" if k <= 10 else "tab20")
    figure, axes = plt.subplots(1, len(frames), figsize=(5.5 * len(frames), 4.8))
    axes = np.atleast_1d(axes)
    for axis, (title, (graphs, frame, smiles)) in zip(axes, frames.items(), strict=True):
        batch = graphs.gather(np.array([frame]), dtype, device=next(network.buffers()).device)
        batch.positions.requires_grad_(True)
        weights = network(batch)["routing"]
        expert = atom_routing(weights, batch.edge_index[0], batch.positions.shape[0]).argmax(-1)
        xyz = batch.positions.detach().cpu().numpy()
        xyz = xyz - xyz.mean(0)
        _, _, axes_pca = np.linalg.svd(xyz, full_matrices=False)  # view along the flattest axis
        xy = xyz @ axes_pca[:2].T
        numbers = batch.numbers.cpu().numpy()
        distances = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
        for a, b in zip(*np.nonzero(np.triu(distances < 1.65, 1)), strict=True):
            axis.plot(*xy[[a, b]].T, color="0.7", lw=1.5, zorder=1)
        sizes = np.where(numbers == 1, 120, 320)
        axis.scatter(*xy.T, s=sizes, c=[colours(e % colours.N) for e in expert],
                     edgecolors="k", zorder=2)
        for (x, y), z in zip(xy, numbers, strict=True):
            axis.annotate(chemical_symbols[z], (x, y), ha="center", va="center", fontsize=7,
                          zorder=3)
        axis.set_title(f"{title}: {smiles}", fontsize=9)
        axis.set_aspect("equal")
        axis.axis("off")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours(e % colours.N),
                          label=f"expert {e}") for e in range(k)]
    figure.legend(handles=handles, loc="lower center", ncol=min(k, 8), frameon=False)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
