"""Pretrained (foundation) models whose weights ship inside their PyPI package.

ANI-1x (torchani 2.2.4): the 8-network ensemble of Smith et al. 2018 (wB97X/6-31G(d)), H, C,
N, O only. torchani's own loader looks for an ``.info`` file that its wheel ships empty and then
downloads; we build the ensemble from the shipped NeuroChem files directly instead, with
torchani's own parsers, so nothing is ever downloaded.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from gmdbench.data.graphs import Batch
from gmdbench.errors import GmdError, UnsupportedElementError
from gmdbench.models.base import MLIP, ModelMetadata, conservative_forces

ANI1X_ELEMENTS = (1, 6, 7, 8)
ANI1X_LEVEL = "wB97X/6-31G(d) (ANI-1x training data)"


class ANI1xConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["ani1x"] = "ani1x"
    members: list[int] | None = None  # ensemble members to use; None: all 8
    cutoff: float = Field(5.2, description="graph cutoff = ANI-1x's radial AEV cutoff; "
                          "ANI builds its own neighbour lists from the coordinates")


def load_ani1x_ensemble(members: list[int] | None = None) -> torch.nn.Module:
    """torchani's BuiltinEnsemble (or one member) from the files in its wheel."""
    import torchani
    from torchani import neurochem
    from torchani.models import BuiltinEnsemble
    from torchani.nn import SpeciesConverter

    root = Path(torchani.__file__).parent / "resources" / "ani-1x_8x"
    constants_file = root / "rHCNO-5.2R_16-3.5A_a4-8.params"
    sae_file = root / "sae_linfit.dat"
    if not constants_file.exists() or not (root / "train0").exists():
        raise GmdError(f"torchani's wheel lacks the ANI-1x files under {root}; reinstall "
                       "torchani==2.2.4 (nothing is downloaded at run time)")
    consts = neurochem.Constants(str(constants_file))
    energy_shifter, sae_dict = neurochem.load_sae(str(sae_file), return_dict=True)
    networks = neurochem.load_model_ensemble(consts.species, str(root / "train"), 8)
    if members is not None:
        networks = torchani.nn.Ensemble([networks[k] for k in members])
    return BuiltinEnsemble(SpeciesConverter(consts.species), torchani.AEVComputer(**consts),
                           networks, energy_shifter, consts.species_to_tensor, consts,
                           sae_dict, periodic_table_index=True)


class ANI1xAdapter(MLIP):
    """ANI-1x on our batch: pads structures to torchani's (molecules, atoms) layout."""

    def __init__(self, config: ANI1xConfig):
        super().__init__()
        self.ensemble = load_ani1x_ensemble(config.members)
        self.cutoff = float(self.ensemble.aev_computer.Rcr)
        self.metadata = ModelMetadata(name="ani1x", library="torchani",
                                      library_version=version("torchani"), conservative=True,
                                      pretrained=True, level_of_theory=ANI1X_LEVEL)
        self._features: torch.Tensor | None = None

    def _padded(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        counts = batch.n_atoms
        start = torch.cumsum(counts, 0) - counts
        slot = torch.arange(batch.positions.shape[0], device=counts.device) - start[batch.batch]
        width = int(counts.max())
        species = torch.full((batch.n_structures, width), -1, dtype=torch.long,
                             device=counts.device)
        species[batch.batch, slot] = batch.numbers
        coordinates = batch.positions.new_zeros((batch.n_structures, width, 3))
        coordinates = coordinates.index_put((batch.batch, slot), batch.positions)
        return species, coordinates, slot

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        from torchani.units import hartree2ev

        outside = ~torch.isin(batch.numbers, torch.tensor(ANI1X_ELEMENTS,
                                                          device=batch.numbers.device))
        if bool(outside.any()):
            missing = sorted({int(z) for z in batch.numbers[outside]})
            raise UnsupportedElementError(f"ANI-1x covers H, C, N, O only, not Z={missing}")
        species, coordinates, slot = self._padded(batch)
        converted = self.ensemble.species_converter((species, coordinates))
        aev = self.ensemble.aev_computer(converted).aevs
        energy = self.ensemble.energy_shifter(
            self.ensemble.neural_networks((converted[0], aev))).energies
        energy = energy * hartree2ev(1.0)
        forces = conservative_forces(energy, batch.positions, self.training)
        features = aev[batch.batch, slot]
        return {"energy": energy, "forces": forces, "node_features": features}

    def head_parameters(self) -> list[torch.nn.Parameter]:
        """The last linear layer of every atomic network (for head-only fine-tuning)."""
        heads = []
        for member in self.ensemble.neural_networks:
            for atomic_network in member.values():
                last = [m for m in atomic_network.modules() if isinstance(m, torch.nn.Linear)][-1]
                heads += list(last.parameters())
        return heads


def refuse_uncovered_elements(model: str, covered, elements: list[int]) -> None:
    """Refuse, before any work, a dataset with elements a pretrained model never saw."""
    missing = sorted(set(elements) - {int(z) for z in covered})
    if missing:
        from ase.data import chemical_symbols

        raise UnsupportedElementError(
            f"{model} does not cover " + ", ".join(chemical_symbols[z] for z in missing)
            + " found in the dataset")


def build_ani1x(config: ANI1xConfig, elements: list[int], statistics: dict) -> MLIP:
    refuse_uncovered_elements("ANI-1x (H, C, N, O only)", ANI1X_ELEMENTS, elements)
    return ANI1xAdapter(config)
