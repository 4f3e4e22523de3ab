"""Materials foundation models whose weights ship in their wheels: CHGNet 0.3.0 and SevenNet-0.

Both were trained on the Materials Project trajectories (MPtrj, VASP PBE/PBE+U), so their
energies live on a different scale from GFN2-xTB or a molecular DFT; the harness's
``zero-shot-refit`` regime fits per-element offsets on top, and ``fine-tune`` trains them.

- CHGNet (Deng et al. 2023), package ``chgnet``: model ``0.3.0`` from
  ``chgnet/pretrained/0.3.0`` (chgnet 0.4.2 ships it; the 0.3.0 wheel on PyPI is yanked and
  chgnet 0.3.1 imports a class ASE 3.29 removed). CHGNet builds its own crystal and bond graphs
  from pymatgen Structures, so the adapter hands it Structures (molecules in a box larger than
  themselves plus two cutoffs) and takes its autograd forces. Its graph converter builds float32
  tensors: CHGNet runs in float32 only.
- SevenNet-0 (Park et al. 2024), package ``sevenn``: checkpoint ``SevenNet_0__11Jul2024``.
  SevenNet's edges follow ASE's convention as ours do (``pos[j] - pos[i] + shift @ cell``), so
  the adapter gives it our batch's edge vectors directly and takes minus the gradient of its
  energy with respect to our positions.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from gmdbench.data.graphs import Batch
from gmdbench.errors import GmdError
from gmdbench.models.base import MLIP, ModelMetadata, conservative_forces, isolation_box
from gmdbench.models.foundation import refuse_uncovered_elements

MPTRJ_LEVEL = "PBE/PBE+U, VASP (MPtrj)"
CHGNET_VOLUME_WARNING = "Converting a tensor with requires_grad=True to a scalar"


class CHGNetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["chgnet"] = "chgnet"
    weights: Literal["0.3.0"] = "0.3.0"
    cutoff: Literal[6.0] = Field(6.0, description="CHGNet 0.3.0's atom-graph cutoff; CHGNet "
                                 "builds its own graphs, ours only serves the harness")


class SevenNetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["sevennet"] = "sevennet"
    weights: Literal["7net-0"] = "7net-0"
    cutoff: Literal[5.0] = Field(5.0, description="SevenNet-0's cutoff: the graph it is given")


def load_chgnet(weights: str = "0.3.0") -> torch.nn.Module:
    """CHGNet from the weights file inside the chgnet wheel (never downloads)."""
    from chgnet.model.model import CHGNet

    return CHGNet.load(model_name=weights, use_device="cpu", verbose=False)


def load_sevennet(weights: str = "7net-0") -> tuple[torch.nn.Module, float]:
    """SevenNet-0 built from the checkpoint inside the sevenn wheel, and its cutoff."""
    import sevenn._keys as keys
    from sevenn.util import load_checkpoint, pretrained_name_to_path

    checkpoint = load_checkpoint(pretrained_name_to_path(weights))
    model = checkpoint.build_model()
    return model, float(checkpoint.config[keys.CUTOFF])


class CHGNetAdapter(MLIP):
    """CHGNet on our batch, through its own pymatgen graph converter."""

    def __init__(self, config: CHGNetConfig):
        super().__init__()
        self.model = load_chgnet(config.weights)
        self.cutoff = float(self.model.graph_converter.atom_graph_cutoff)
        if self.cutoff != config.cutoff:
            raise GmdError(f"CHGNet atom-graph cutoff {self.cutoff} A != config {config.cutoff}")
        self.metadata = ModelMetadata(name="chgnet", library="chgnet",
                                      library_version=version("chgnet"), conservative=True,
                                      pretrained=True,
                                      level_of_theory=f"{MPTRJ_LEVEL}, CHGNet {config.weights}")

    def _structures(self, batch: Batch) -> list:
        from pymatgen.core import Lattice, Structure

        positions = batch.positions.detach().cpu().double().numpy()
        numbers = batch.numbers.cpu().numpy()
        ends = np.cumsum(batch.n_atoms.cpu().numpy())
        structures = []
        for s, (start, end) in enumerate(zip(np.r_[0, ends[:-1]], ends, strict=True)):
            xyz = positions[start:end]
            periodic = bool(batch.pbc[s].any())
            cell = batch.cell[s].detach().cpu().double().numpy() if periodic \
                else isolation_box(xyz, self.cutoff)
            structures.append(Structure(Lattice(cell), numbers[start:end], xyz,
                                        coords_are_cartesian=True))
        return structures

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        if next(self.model.parameters()).dtype != torch.float32:
            raise GmdError("CHGNet runs in float32 only (its graph converter builds float32 "
                           "tensors); set training.dtype: float32")
        device = next(self.model.parameters()).device  # its converter builds graphs on the host
        converter = self.model.graph_converter
        # its converter refuses a structure with an atom that has no neighbour, which is right
        # for a crystal but not for a lone atom asked for on purpose (the model's own
        # isolated-atom energy, the anchor of pretrained offsets)
        lone_atoms = bool(torch.all(batch.n_atoms == 1))
        response = converter.on_isolated_atoms
        if lone_atoms:
            converter.set_isolated_atom_response("ignore")
        try:
            graphs = [converter(structure).to(device) for structure in self._structures(batch)]
            with warnings.catch_warnings():  # on every call: it makes its volume a scalar
                warnings.filterwarnings("ignore", CHGNET_VOLUME_WARNING, UserWarning)
                out = self.model(graphs, task="ef", return_atom_feas=True)
        finally:
            converter.set_isolated_atom_response(response)
        dtype = batch.positions.dtype
        energy = (out["e"] * batch.n_atoms.to(out["e"].dtype)).to(dtype)  # CHGNet: eV/atom
        forces = torch.cat(out["f"]).to(dtype)
        features = torch.cat(out["atom_fea"]).to(dtype)
        return {"energy": energy, "forces": forces, "node_features": features}

    def head_parameters(self) -> list[torch.nn.Parameter]:
        """CHGNet's readout MLP (for head-only fine-tuning)."""
        return list(self.model.mlp.parameters())


class SevenNetAdapter(MLIP):
    """SevenNet-0 on our batch: our edges and edge vectors, its layers, our autograd forces."""

    def __init__(self, config: SevenNetConfig):
        super().__init__()
        model, self.cutoff = load_sevennet(config.weights)
        if self.cutoff != config.cutoff:
            raise GmdError(f"SevenNet checkpoint cutoff {self.cutoff} A != config {config.cutoff}")
        model.set_is_batch_data(True)
        # forces come from our positions (below), not from SevenNet's edge-gradient module
        model.delete_module_by_key("force_output")
        model.key_grad = None
        self.model = model
        self.elements = sorted(int(z) for z in model.type_map)  # the checkpoint's own
        self.metadata = ModelMetadata(name="sevennet", library="sevenn",
                                      library_version=version("sevenn"), conservative=True,
                                      pretrained=True,
                                      level_of_theory=f"{MPTRJ_LEVEL}, SevenNet-0 (11Jul2024)")
        self._features: torch.Tensor | None = None
        self.model.reduce_input_to_hidden.register_forward_pre_hook(self._keep_features)

    def _keep_features(self, module, inputs) -> None:
        import sevenn._keys as keys

        self._features = inputs[0][keys.NODE_FEATURE]

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        import sevenn._keys as keys

        vectors = batch.edge_vectors()
        data = {
            keys.ATOMIC_NUMBERS: batch.numbers,
            keys.NODE_FEATURE: batch.numbers,  # replaced by SevenNet's one-hot of its type map
            keys.POS: batch.positions,
            keys.EDGE_IDX: batch.edge_index,
            keys.EDGE_VEC: vectors,
            keys.BATCH: batch.batch,
            keys.NUM_ATOMS: batch.n_atoms,
        }
        out = self.model(data)
        energy = out[keys.PRED_TOTAL_ENERGY].reshape(-1)
        forces = conservative_forces(energy, batch.positions, self.training)
        return {"energy": energy, "forces": forces, "node_features": self._features}

    def head_parameters(self) -> list[torch.nn.Parameter]:
        """The two linear layers that map SevenNet's features to atomic energies."""
        return [*self.model.reduce_input_to_hidden.parameters(),
                *self.model.reduce_hidden_to_energy.parameters()]


CHGNET_ELEMENTS = tuple(range(1, 95))
# SevenNet-0's type map (Z 1-94 but Po-Ra), known before its weights are loaded so a dataset is
# refused first; a test checks it against the checkpoint's own type map
SEVENNET_ELEMENTS = tuple(z for z in range(1, 95) if z not in (84, 85, 86, 87, 88))


def build_chgnet(config: CHGNetConfig, elements: list[int], statistics: dict) -> MLIP:
    refuse_uncovered_elements("CHGNet 0.3.0", CHGNET_ELEMENTS, elements)
    return CHGNetAdapter(config)


def build_sevennet(config: SevenNetConfig, elements: list[int], statistics: dict) -> MLIP:
    refuse_uncovered_elements("SevenNet-0", SEVENNET_ELEMENTS, elements)
    return SevenNetAdapter(config)
