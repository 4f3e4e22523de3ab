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
                          capture_output=True, text=True, input=input_text, timeout=600)
