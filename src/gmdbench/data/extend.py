"""A dataset plus new labelled frames, as a new dataset file (the next round's training data).

Active learning and model-driven exploration both end a round the same way: the frames just
labelled join the training split. The base file is copied (SQLite's backup API: the committed
content, write-ahead log included), the frames appended, the copy folded into one file and
renamed into place, so a kill never leaves half a round and the base is never touched.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gmdbench.data.store import DatasetStore
from gmdbench.errors import GmdError


@dataclass(frozen=True)
class LabelledFrame:
    """A frame and its reference labels, with the dataset keys it is stored under."""

    numbers: np.ndarray
    positions: np.ndarray
    energy: float
    forces: np.ndarray
    keys: dict[str, Any]


def extended_dataset(base: Path, frames: Iterable[LabelledFrame], target: Path) -> Path:
    """``target``: ``base`` plus ``frames``; an existing ``target`` is returned as it is (a
    finished round is never rebuilt)."""
    target = Path(target)
    if target.exists():
        return target
    if Path(base).resolve() == target.resolve():
        raise GmdError(f"dataset {target} would overwrite its own base")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp"
    staging.unlink(missing_ok=True)
    with closing(sqlite3.connect(base)) as source, closing(sqlite3.connect(staging)) as copy:
        source.backup(copy)
    store = DatasetStore(staging, write=True)
    with store.session():
        for frame in frames:
            store.write_frame(frame.numbers, frame.positions, frame.energy, frame.forces,
                              frame.keys)
    store.finalize()  # one self-contained file before it is renamed into place
    os.replace(staging, target)
    return target
