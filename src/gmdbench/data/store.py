"""The dataset store: an ASE SQLite database of labelled frames, plus a failures table.

Each frame is written in its own transaction (a killed build loses at most frames in flight).
The file runs in SQLite's WAL mode during a build, so a commit costs no fsync of the whole
database, and is turned back into a single self-contained file when the build ends.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db.sqlite import SQLite3Database

from gmdbench.data.content_hash import definition_hash, hash_content, remembered_hash
from gmdbench.data.temperature import kinetic_temperature
from gmdbench.errors import CorruptDatasetError, LabelError, StorageError
from gmdbench.files import storage_error

log = logging.getLogger(__name__)

FRAME_KEYS = (
    "smiles", "molecule_id", "trajectory_id", "frame", "split", "temperature", "seed",
    "level_of_theory", "sampler",
)  # fmt: skip
_FAILURES_SCHEMA = """
CREATE TABLE IF NOT EXISTS gmd_failures (
    trajectory_id TEXT NOT NULL,
    frame INTEGER NOT NULL,
    smiles TEXT NOT NULL,
    split TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (trajectory_id, frame)
)"""
class _ClosingConnection(sqlite3.Connection):
    """A connection that closes when its ``with`` block ends (sqlite3's only commits).

    ASE opens a connection per operation and leaves closing it to the garbage collector; open
    connections would keep the file locked when the build turns WAL off at the end.
    """

    def __exit__(self, exc_type, exc_value, traceback):
        result = super().__exit__(exc_type, exc_value, traceback)
        self.close()
        return result


class _WalDatabase(SQLite3Database):
    """ASE's SQLite backend with WAL journaling and commits that do not fsync each time; or,
    ``readonly``, through SQLite's read-only URI: reading a file can never alter it (ASE would
    otherwise write its schema into any file it is pointed at)."""

    def __init__(self, filename: str, readonly: bool = False):
        self.readonly = readonly
        # WAL only inside a session (a build's many commits): a single write or a read
        # through a writable store must not switch a one-file dataset to WAL mode, which
        # persists in the file and makes every later read-only reader leave -wal and -shm
        # files beside it (and re-stamps the file the content-hash memo keys on)
        self.wal = False
        super().__init__(filename)

    def _connect(self):
        if self.readonly:
            return sqlite3.connect(f"file:{self.filename}?mode=ro", uri=True, timeout=60,
                                   factory=_ClosingConnection)
        connection = sqlite3.connect(self.filename, timeout=60, factory=_ClosingConnection)
        if self.wal:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
        return connection


def _check_gmd_dataset(path: Path) -> None:
    """Refuse, reading only, a file without gmd-bench's tables (ASE's frames and ours)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)) as connection:
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"systems", "gmd_failures"} <= tables:
        what = "an empty file" if not tables else "an ASE database written by another program" \
            if "systems" in tables else "an SQLite file of another kind"
        raise CorruptDatasetError(f"not a gmd-bench dataset: {path} ({what}); build one with "
                                  "`gmd data build` or import frames with `gmd data import`")


def _check_readable(path: Path) -> None:
    """Refuse a file that is not an intact SQLite database with an ASE 'systems' table."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)) as connection:
            status = connection.execute("PRAGMA quick_check").fetchone()[0]
            tables = {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as error:
        message = f"dataset {path} is corrupt or not a database: {error}"
        raise CorruptDatasetError(message) from error
    if status != "ok":
        raise CorruptDatasetError(f"dataset {path} failed SQLite's integrity check: {status}")
    if tables and "systems" not in tables:
        raise CorruptDatasetError(f"dataset {path} is an SQLite file but not an ASE database")


class DatasetStore:
    """Read and append labelled frames; the only code that touches the dataset file.

    Opened read-only unless it is created or ``write`` is asked: commands that only read a
    dataset never change a byte of it, and a file that is not a gmd-bench dataset (another
    program's ASE database, an empty file) is refused, not given a schema."""

    def __init__(self, path: str | Path, create: bool = False, write: bool | None = None):
        self.path = Path(path)
        write = create if write is None else write
        if self.path.is_dir():
            raise CorruptDatasetError(f"dataset {self.path} is a folder, not a dataset file")
        if self.path.exists():
            _check_readable(self.path)
        elif not create:
            raise CorruptDatasetError(f"dataset {self.path} does not exist")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise storage_error(error, self.path) from error
        self.db = _WalDatabase(str(self.path), readonly=not write)
        if not write:
            _check_gmd_dataset(self.path)
            return
        try:
            with self.db.managed_connection() as connection:
                connection.execute(_FAILURES_SCHEMA)
        except sqlite3.OperationalError as error:
            raise StorageError(f"cannot open dataset {self.path} for writing: {error}") from error
        except sqlite3.DatabaseError as error:
            raise CorruptDatasetError(f"dataset {self.path}: {error}") from error

    # -- metadata -------------------------------------------------------------------------------
    @property
    def metadata(self) -> dict[str, Any]:
        try:
            return dict(self.db.metadata)
        except (sqlite3.DatabaseError, json.JSONDecodeError) as error:
            message = f"dataset {self.path}: unreadable metadata ({error})"
            raise CorruptDatasetError(message) from error

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self.db.metadata = value

    # -- writing --------------------------------------------------------------------------------
    def write_frame(
        self,
        numbers: np.ndarray,
        positions: np.ndarray,
        energy: float,
        forces: np.ndarray,
        keys: dict[str, Any],
        momenta: np.ndarray | None = None,
        cell: np.ndarray | None = None,
        pbc: np.ndarray | bool = False,
    ) -> int:
        """Append one labelled frame in its own transaction; return its row id. Non-finite labels
        are refused (naming the frame): every label that reaches a store is a number."""
        if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
            raise LabelError(f"dataset {self.path}: refusing to store non-finite energy or forces "
                             f"of trajectory {keys.get('trajectory_id')} frame {keys.get('frame')}")
        atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)
        if momenta is not None:
            atoms.set_momenta(momenta)
        atoms.calc = SinglePointCalculator(atoms, energy=float(energy), forces=np.asarray(forces))
        try:
            row_id = self.db.write(atoms, key_value_pairs=dict(keys))
            self._commit()
        except sqlite3.OperationalError as error:  # full disk, read-only file system
            raise StorageError(f"cannot write dataset {self.path}: {error}; the frames already "
                               "stored are kept, free space and run the same command to resume"
                               ) from error
        return row_id

    def record_failure(self, trajectory_id: str, frame: int, smiles: str, split: str,
                       reason: str) -> None:
        with self.db.managed_connection() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO gmd_failures VALUES (?, ?, ?, ?, ?)",
                (trajectory_id, int(frame), smiles, split, reason),
            )
        self._commit()

    @contextmanager
    def session(self) -> Iterator[DatasetStore]:
        """Keep one connection open (a build's writes), in WAL mode so that a commit costs no
        fsync of the whole file; every write still commits at once. :meth:`finalize` folds
        the log back in when the build is done."""
        self.db.wal = True
        try:
            with self.db:
                yield self
        finally:
            self.db.wal = False

    def _commit(self) -> None:
        if self.db.connection is not None:  # inside session(): ASE would defer the commit
            self.db.connection.commit()

    def finalize(self) -> None:
        """Fold the write-ahead log back in: the dataset becomes one portable file.

        If another process holds the file open (a reader of ``gmd data info``), the database
        stays in WAL mode, which is just as valid; the next build folds it in.
        """
        with closing(sqlite3.connect(self.path, timeout=5)) as connection:
            try:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                connection.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.OperationalError as error:
                log.warning("dataset %s left in WAL mode: %s", self.path, error)

    # -- reading --------------------------------------------------------------------------------
    def failures(self) -> list[dict[str, Any]]:
        with self.db.managed_connection() as connection:
            rows = connection.execute(
                "SELECT trajectory_id, frame, smiles, split, reason FROM gmd_failures "
                "ORDER BY trajectory_id, frame"
            ).fetchall()
        keys = ("trajectory_id", "frame", "smiles", "split", "reason")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def rows(self, **selection: Any) -> Iterator[Any]:
        try:
            yield from self.db.select(**selection)
        except (sqlite3.DatabaseError, ValueError, KeyError) as error:
            raise CorruptDatasetError(f"dataset {self.path}: unreadable rows ({error})") from error

    def frame_counts(self) -> dict[str, int]:
        """Number of stored frames per trajectory id."""
        return dict(Counter(row.trajectory_id for row in self.rows(columns=["key_value_pairs"])
                            if "trajectory_id" in row))

    def last_frame(self, trajectory_id: str) -> Any:
        rows = list(self.rows(trajectory_id=trajectory_id, sort="-frame", limit=1))
        return rows[0] if rows else None

    def count(self) -> int:
        return self.db.count()

    def summary(self) -> dict[str, Any]:
        """Frames per split and molecule, failures, level of theory and the content hash."""
        per_split: Counter[str] = Counter()
        per_molecule: dict[tuple[str, str], int] = defaultdict(int)
        for row in self.rows(columns=["key_value_pairs"]):
            per_split[row.get("split", "?")] += 1
            per_molecule[(row.get("split", "?"), row.get("smiles", "?"))] += 1
        temperatures = self.split_temperatures()
        metadata = self.metadata
        return {
            "path": str(self.path),
            "task": metadata.get("task", {}).get("name"),
            "preset": metadata.get("preset", {}).get("name"),
            "seed": metadata.get("seed"),
            "level_of_theory": metadata.get("level_of_theory"),
            "frames": sum(per_split.values()),
            "frames_per_split": dict(per_split),
            "frames_per_molecule": {f"{s} {m}": n for (s, m), n in sorted(per_molecule.items())},
            "temperature_K": metadata.get("preset", {}).get("sampler", {}).get("temperature_K"),
            "kinetic_temperature_per_split": temperatures,
            "failures": self.failures(),
            "hash": self.content_hash(),
        }

    def split_temperatures(self) -> dict[str, dict[str, float]]:
        """Mean (and std over frames) of the kinetic temperature per split, from the stored
        momenta of MD frames (frames without momenta, from other samplers, are skipped)."""
        values: dict[str, list[float]] = defaultdict(list)
        for row in self.rows():
            momenta = row.get("momenta")
            if momenta is not None and np.any(momenta):
                values[row.get("split", "?")].append(kinetic_temperature(momenta, row.numbers))
        return {split: {"mean": float(np.mean(v)), "std": float(np.std(v)), "frames": len(v)}
                for split, v in sorted(values.items())}

    def definition_hash(self) -> str | None:
        """What this dataset is meant to be (see ``definition_hash``); None if imported."""
        return definition_hash(self.metadata)

    def content_hash(self) -> str:
        """SHA-256 over the dataset's content (see ``content_hash.hash_content``), remembered
        per process for the file's stamp."""
        return remembered_hash(self.path, lambda: hash_content(self.metadata, self.rows(),
                                                                self.failures()))

    def to_atoms(self, row: Any) -> Atoms:
        """A row as ase.Atoms with a SinglePointCalculator and the frame keys in ``info``."""
        atoms = row.toatoms(add_additional_information=False)
        atoms.info.update(row.key_value_pairs)
        return atoms


def dataset_distance_path(data: str | Path) -> Path:
    """Where a dataset's SOAP distance statistics are kept: beside it (written by the pipeline,
    read by reports)."""
    return Path(data).with_suffix(".distance.json")
