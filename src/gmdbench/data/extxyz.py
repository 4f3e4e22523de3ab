"""Export datasets to extended XYZ and import them back, with ASE's standard keys.

Energies and forces go where ``ase.io.read`` and other codes (mace, nequip, fairchem) look for
them (``energy`` in the comment line, ``forces`` as a per-atom column); frame keys go in
``info``; the dataset metadata rides along, as JSON, in the first frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
import numpy as np

from gmdbench.data.store import FRAME_KEYS, DatasetStore
from gmdbench.errors import CorruptDatasetError

METADATA_KEY = "gmd_metadata"


def export_extxyz(store: DatasetStore, out: str | Path) -> int:
    """Write every frame, ordered by (trajectory, frame); return the number written."""
    rows = sorted(store.rows(), key=lambda r: (str(r.get("trajectory_id", "")),
                                               int(r.get("frame", -1))))
    frames = []
    for index, row in enumerate(rows):
        atoms = store.to_atoms(row)
        if index == 0:
            atoms.info[METADATA_KEY] = json.dumps(store.metadata, sort_keys=True)
        frames.append(atoms)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(out, frames, format="extxyz")
    return len(frames)


def import_extxyz(path: str | Path, out: str | Path) -> DatasetStore:
    """Read an extxyz file with energies and forces into a new dataset store."""
    path, out = Path(path), Path(out)
    if out.exists():
        raise CorruptDatasetError(f"refusing to import into existing dataset {out}")
    try:
        frames = ase.io.read(path, index=":", format="extxyz")
    except FileNotFoundError as error:
        raise CorruptDatasetError(f"extxyz file {path} does not exist") from error
    except (OSError, ValueError, IndexError, KeyError, StopIteration) as error:
        raise CorruptDatasetError(f"extxyz file {path} is corrupt or truncated: "
                                  f"{' '.join(str(error).split())}") from error
    if not frames:
        raise CorruptDatasetError(f"extxyz file {path} holds no frames")
    for index, atoms in enumerate(frames):
        if atoms.calc is None or "energy" not in atoms.calc.results \
                or "forces" not in atoms.calc.results:
            raise CorruptDatasetError(f"extxyz file {path}: frame {index} lacks energy or forces")
        for name, values in (("energy", atoms.calc.results["energy"]),
                             ("forces", atoms.calc.results["forces"]),
                             ("positions", atoms.positions)):
            if not np.all(np.isfinite(values)):
                raise CorruptDatasetError(f"extxyz file {path}: frame {index} has non-finite "
                                          f"{name} (NaN or inf); fix or drop that frame")
    store = DatasetStore(out, create=True)
    metadata = frames[0].info.pop(METADATA_KEY, None)
    store.metadata = json.loads(metadata) if metadata else {"imported_from": str(path)}
    with store.session():
        for index, atoms in enumerate(frames):
            keys = {k: v for k, v in atoms.info.items() if k in FRAME_KEYS}
            keys.setdefault("trajectory_id", "imported")
            keys.setdefault("frame", index)
            momenta = atoms.get_momenta() if atoms.has("momenta") else None
            store.write_frame(
                atoms.numbers, atoms.positions, atoms.calc.results["energy"],
                np.asarray(atoms.calc.results["forces"]), keys, momenta=momenta,
                cell=atoms.cell.array, pbc=atoms.pbc,
            )
    store.finalize()
    return store
