"""Paths and helpers shared by tests."""

import os
import subprocess
import sys
from pathlib import Path

# ../shared beside the checkout; GMD_TEST_SHARED where the tests run from a copy elsewhere
# (bench/mutation.py mutates one under results/)
SHARED = Path(os.environ.get("GMD_TEST_SHARED") or Path(__file__).resolve().parents[2] / "shared")
SB2TE3_FRAMES = SHARED / "data" / "cr_sb2te3" / "dft_600K_a.extxyz"
DATA = Path(__file__).parent / "data"


def gmd(*args, input_text=None):
    """Run the `gmd` command in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "gmdbench.cli", *map(str, args)],
                          capture_output=True, text=True, input=input_text)


def tiny_matrix_file(template: str, tmp_path: Path) -> Path:
    """A run-matrix YAML from tests/data with the tiny task and preset paths filled in."""
    text = (DATA / template).read_text()
    text = text.replace("TASK", str(DATA / "tiny_task.yaml"))
    text = text.replace("PRESET", str(DATA / "tiny_preset.yaml"))
    path = tmp_path / template
    path.write_text(text)
    return path


def tiny_schnet(tiny_dataset: Path):
    """A small SchNet on the tiny dataset with fitted E0 and force scale, seeded; and its train
    and val graph sets (the trainer tests' set-up)."""
    import torch

    from gmdbench.data.graphs import graphset_from_store
    from gmdbench.data.store import DatasetStore
    from gmdbench.models.base import Potential
    from gmdbench.models.registry import build_model, model_config
    from gmdbench.training.reference_energies import fit_reference_energies, force_scale

    store = DatasetStore(tiny_dataset)
    train_set, _ = graphset_from_store(store, "train", 4.0)
    val_set, _ = graphset_from_store(store, "val", 4.0)
    torch.manual_seed(3)
    network = build_model(model_config("schnet", {"cutoff": 4.0, "hidden_channels": 16,
                                                  "num_filters": 16}), train_set.elements, {})
    potential = Potential(network, fit_reference_energies(train_set, train_set.elements),
                          scale=force_scale(train_set))
    return potential, train_set, val_set
