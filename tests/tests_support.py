"""Paths shared by tests."""

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
SB2TE3_FRAMES = SHARED / "data" / "cr_sb2te3" / "dft_600K_a.extxyz"
DATA = Path(__file__).parent / "data"
