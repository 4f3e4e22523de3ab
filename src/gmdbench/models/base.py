"""The model protocol (DESIGN.md section 3) and the Potential that training and inference use.

An adapter (``MLIP``) turns a :class:`~gmdbench.data.graphs.Batch` into its library's input and
returns ``energy`` (n_structures,), ``forces`` (n_atoms, 3) and ``node_features`` (n_atoms, d).
A :class:`Potential` adds what every model shares: per-element reference energies (fitted on
train or taken from the isolated atoms) and a scale, so the network learns a residual of order
one whatever the architecture.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from gmdbench.config import DEVICE_PATTERN
from gmdbench.data.graphs import Batch
from gmdbench.errors import DeviceError, UnsupportedElementError

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Torch's default dtype for the duration: some library code (e3nn, nequip, fairchem)
    creates tensors in it, so float64 runs build and run their models inside this."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


_DEVICE = re.compile(DEVICE_PATTERN)


def check_device_spelling(spec: str) -> None:
    """A device name's form only (where another machine will resolve it)."""
    if not _DEVICE.match(str(spec)):
        raise DeviceError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N")


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """``auto`` (a GPU when torch sees one, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``;
    a GPU that is not there is one line saying so, before any work."""
    spec = "auto" if spec is None else str(spec)
    check_device_spelling(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise DeviceError(f"device {spec!r} requested but torch {torch.__version__} "
                              f"({build}) sees no CUDA GPU on this machine; use --device cpu "
                              "or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {spec!r} requested but this machine has {count} CUDA "
                              f"GPU(s) (cuda:0..cuda:{count - 1})")
    return device


def isolation_box(positions: np.ndarray, cutoff: float) -> np.ndarray:
    """A cubic cell larger than the atoms' extent plus two cutoffs (3 x 3, A): for models that
    only take periodic input, a molecule in it never meets a periodic image of itself."""
    positions = np.asarray(positions, dtype=float)
    extent = float(np.ptp(positions, axis=0).max()) if len(positions) > 1 else 0.0
    return np.eye(3) * (extent + 2.0 * cutoff + 1.0)


def element_index_table(elements: list[int]) -> torch.Tensor:
    """(119,) long tensor: the position of each atomic number in ``elements``, -1 elsewhere
    (register it as a buffer; :func:`species_indices` looks numbers up in it)."""
    table = torch.full((119,), -1, dtype=torch.long)
    table[sorted(int(z) for z in elements)] = torch.arange(len(elements))
    return table


def species_indices(table: torch.Tensor, numbers: torch.Tensor, model: str) -> torch.Tensor:
    """Each atom's index in the model's element list; an element it was not built for is an
    error naming both."""
    species = table[numbers]
    if bool((species < 0).any()):
        covered = sorted(int(z) for z in torch.nonzero(table >= 0).flatten())
        unknown = sorted({int(z) for z in numbers[species < 0]})
        raise UnsupportedElementError(f"{model} was built for Z={covered}, not Z={unknown}")
    return species


class ModelMetadata(BaseModel):
    """What a report needs to know about a model besides its numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    library: str
    library_version: str
    conservative: bool
    # what the forces are, in words a table can print when they are not minus the full
    # gradient of the energy (None: "-dE/dx" for conservative models, "direct" otherwise)
    forces_note: str | None = None
    pretrained: bool = False
    level_of_theory: str | None = None
    # False for models without a global energy (DeepSet-MoE with aggregation "none"): they
    # train on forces only and their energies are reported as undefined
    energy_defined: bool = True
    # what tells apart runs of one model whose configs are different models in a table
    # (DeepSet-MoE: router, aggregation, rho)
    variant: str | None = None


class MLIP(nn.Module, ABC):
    """An architecture adapter. Energies are in the network's own (scaled) units."""

    metadata: ModelMetadata
    cutoff: float

    @abstractmethod
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``energy`` (S,), ``forces`` (N, 3), ``node_features`` (N, d)."""


def conservative_forces(energy: torch.Tensor, positions: torch.Tensor, training: bool
                        ) -> torch.Tensor:
    """Minus the gradient of the total energy; keeps the graph when training on forces."""
    (gradient,) = torch.autograd.grad(energy.sum(), positions, create_graph=training)
    return -gradient


_FLOAT64_BUFFERS = ("atomic_energies", "scale")


class Potential(nn.Module):
    """E = scale * network + sum_i E0[Z_i];  F = scale * network forces (E0 has no force)."""

    def __init__(self, network: MLIP, atomic_energies: dict[int, float], scale: float = 1.0):
        super().__init__()
        self.network = network
        table = torch.zeros(119, dtype=torch.float64)
        for number, energy in atomic_energies.items():
            table[int(number)] = float(energy)
        self.register_buffer("atomic_energies", table)
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float64))

    @property
    def metadata(self) -> ModelMetadata:
        return self.network.metadata

    @property
    def cutoff(self) -> float:
        return self.network.cutoff

    def _apply(self, fn, recurse=True):
        """Keep E0 and the scale in float64 whatever ``.to(dtype)`` asks of the network.

        Reference energies of ~-1000 eV molecules in float32 carry ~6e-5 eV of rounding; the
        buffers follow device moves but never lose precision.
        """
        kept = {name: getattr(self, name).detach().clone() for name in _FLOAT64_BUFFERS}
        super()._apply(fn, recurse)
        for name, value in kept.items():
            device = getattr(self, name).device
            setattr(self, name, value.to(device=device, dtype=torch.float64))
        return self

    def reference_energy(self, batch: Batch) -> torch.Tensor:
        per_atom = self.atomic_energies[batch.numbers]  # float64: summed in float64
        total = torch.zeros(batch.n_structures, dtype=per_atom.dtype,
                            device=per_atom.device)
        return total.index_add_(0, batch.batch, per_atom)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        if not batch.positions.requires_grad:  # gradient forces, or graphs built from positions
            batch.positions.requires_grad_(True)
        out = self.network(batch)
        # total energies in float64 whatever the network's precision: -1000 eV in float32
        # carries 1e-4 eV of rounding, the size of the errors being measured
        energy = self.scale * out["energy"].to(torch.float64) + self.reference_energy(batch)
        forces = self.scale.to(out["forces"].dtype) * out["forces"]
        extras = {k: v for k, v in out.items() if k not in ("energy", "forces")}
        return {**extras, "energy": energy, "forces": forces}
