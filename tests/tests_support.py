"""Paths and helpers shared by tests."""

import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
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
