"""What a dataset is meant to be and what it holds, as two hashes.

The definition hash names a dataset's recipe (task, preset, reference method and its version,
data seed): two machines that build one definition should get the same labels, but another CPU
or BLAS may change their last bits. The content hash covers the frames themselves (numbers,
positions, cell, momenta, labels, keys), the metadata and the failures list; it guards every
cache and the reference comparison, so it is its own module with its own tests, apart from the
store that reads the rows.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

# content hashes already computed in this process, by file stamp (remembered_hash)
_HASHES: dict[tuple, str] = {}
# Metadata keys that describe how, not what: left out of the content hash.
VOLATILE_METADATA = ("versions", "created", "timings")
DEFINITION_KEYS = ("task", "preset", "reference", "seed", "level_of_theory")
RACY_NS = 2_000_000_000  # git's racy-file window: a file this fresh is never remembered


def definition_hash(metadata: dict[str, Any]) -> str | None:
    """The hash of a dataset's definition (DEFINITION_KEYS of its metadata); None for a dataset
    that has none (imported frames)."""
    if not all(key in metadata for key in DEFINITION_KEYS):
        return None
    definition = {key: metadata[key] for key in DEFINITION_KEYS}
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


def hash_content(metadata: dict[str, Any], rows: Iterable[Any],
                 failures: list[dict[str, Any]]) -> str:
    """SHA-256 over content: metadata (less VOLATILE_METADATA), each ASE row's keys, numbers,
    positions, cell, pbc, momenta, forces and energy, and the failures list.

    Timestamps, row ids, users and unique ids are excluded, and frames are ordered by
    (trajectory, frame), so the same task, preset and seed give the same hash on any run."""
    digest = hashlib.sha256()
    kept = {k: v for k, v in metadata.items() if k not in VOLATILE_METADATA}
    digest.update(json.dumps(kept, sort_keys=True).encode())
    records = []
    for row in rows:
        keys = dict(row.key_value_pairs)
        record = hashlib.sha256()
        record.update(json.dumps(keys, sort_keys=True).encode())
        for array in (row.numbers, row.positions, row.cell, row.pbc,
                      row.get("momenta"), row.get("forces")):
            if array is not None:
                record.update(np.ascontiguousarray(array).tobytes())
        record.update(float(row.get("energy", np.nan)).hex().encode())
        records.append((str(keys.get("trajectory_id", "")), int(keys.get("frame", -1)),
                        record.hexdigest()))
    for _, _, record_hash in sorted(records):
        digest.update(record_hash.encode())
    digest.update(json.dumps(failures, sort_keys=True).encode())
    return digest.hexdigest()


def file_stamp(path: Path) -> tuple:
    """The file's resolved path, then size, modification time and inode of it and of its
    write-ahead log (None for one that does not exist)."""
    parts: list = [str(path.resolve())]
    for part in (path, Path(f"{path}-wal")):
        stat = part.stat() if part.exists() else None
        parts += [stat.st_size, stat.st_mtime_ns, stat.st_ino] if stat else [None] * 3
    return tuple(parts)


def remembered_hash(path: Path, compute: Callable[[], str]) -> str:
    """``compute()``, remembered per process for the file's stamp (every run checks the hash
    before training and before evaluation): a file rewritten in place has another stamp and is
    hashed again. As in git's racy-file rule, a file modified in the last RACY_NS (or stamped
    in the future) is never remembered (timestamps can be coarse)."""
    stamp = file_stamp(path)
    if stamp in _HASHES:
        return _HASHES[stamp]
    digest = compute()
    newest = max((t for t in stamp[2::3] if t is not None), default=0)
    if time.time_ns() - newest > RACY_NS and stamp == file_stamp(path):
        _HASHES[stamp] = digest
    return digest
