"""The results store: one SQLite file, a row per (run, split, molecule or "all", metric).

Each run's row carries its resolved config, package versions, dataset hash, seed and timings,
so a table can always be traced back to what produced it. Reports read only this file and the
predictions saved in run directories.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from gmdbench.errors import ResultsStoreError, StorageError
from gmdbench.files import storage_error

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    regime TEXT NOT NULL,
    seed INTEGER NOT NULL,
    dataset_hash TEXT NOT NULL,
    level_of_theory TEXT,
    run_dir TEXT NOT NULL,
    config TEXT NOT NULL,
    model_metadata TEXT NOT NULL,
    versions TEXT NOT NULL,
    timings TEXT NOT NULL,
    training TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    split TEXT NOT NULL,
    molecule TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, split, molecule, metric)
);
"""


def model_label(run: dict[str, Any]) -> str:
    """A run's model as tables and plots name it: its variant too where it has one
    (DeepSet-MoE: router, aggregation, rho), so variants are never merged."""
    variant = run["model_metadata"].get("variant")
    return run["model"] + (f" [{variant}]" if variant else "")


_TABLES = {"runs", "metrics"}


class ResultsStore:
    """The results store. ``read_only``: opened through SQLite's read-only URI (reports read
    with it: a report never alters its input); a file without the store's tables is refused
    either way, never given them (an existing store of another kind is not written into)."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if self.path.is_dir():
            raise ResultsStoreError(f"results store {self.path} is a folder, not a file")
        if read_only and not self.path.exists():
            raise ResultsStoreError(f"results store {self.path} does not exist")
        if self.path.exists():
            self._check_kind()
        if read_only:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise storage_error(error, self.path) from error
        try:
            with self._connect() as connection:
                connection.executescript(_SCHEMA)
        except sqlite3.OperationalError as error:
            raise StorageError(f"cannot open results store {self.path}: {error}") from error
        except sqlite3.DatabaseError as error:
            raise ResultsStoreError(f"results store {self.path} is not a results store: {error}"
                                    ) from error

    def _check_kind(self) -> None:
        """Refuse, reading only, a file that is not a (possibly still empty) results store."""
        try:
            with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                         timeout=60)) as connection:
                tables = {row[0] for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as error:
            raise ResultsStoreError(f"not a gmd-bench results store: {self.path} ({error})"
                                    ) from error
        if tables and not tables >= _TABLES:
            raise ResultsStoreError(
                f"not a gmd-bench results store: {self.path} (an SQLite file with tables "
                f"{', '.join(sorted(tables)[:4])}); give a new file or an existing store")
        if not tables and self.read_only:  # an empty file: nothing a report can read
            raise ResultsStoreError(f"not a gmd-bench results store: {self.path} (empty)")

    def _connect(self):
        if self.read_only:
            return closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=60))
        return closing(sqlite3.connect(self.path, timeout=60))

    def record_run(self, run_id: str, task: str, model: str, regime: str, seed: int,
                   dataset_hash: str, level_of_theory: str | None, run_dir: Path,
                   config: dict, model_metadata: dict, versions: dict, timings: dict,
                   training: dict, metrics: dict[str, dict[str, dict[str, float]]]) -> None:
        """Replace everything stored for ``run_id`` (a re-evaluation overwrites, never adds)."""
        rows = [(run_id, split, molecule, name, value)
                for split, per_molecule in metrics.items()
                for molecule, values in per_molecule.items()
                for name, value in values.items()]
        try:
            self._write(run_id, task, model, regime, seed, dataset_hash, level_of_theory,
                        run_dir, config, model_metadata, versions, timings, training, rows)
        except sqlite3.OperationalError as error:  # full disk, read-only: the store is intact
            raise StorageError(f"cannot write results store {self.path}: {error}; the run "
                               "directory keeps its predictions, run `gmd evaluate` again"
                               ) from error

    def _write(self, run_id, task, model, regime, seed, dataset_hash, level_of_theory,
               run_dir, config, model_metadata, versions, timings, training, rows) -> None:
        """One transaction: the run's old rows go and its new ones come, or nothing changes."""
        with self._connect() as connection, connection:
            connection.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            connection.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, task, model, regime, seed, dataset_hash, level_of_theory, str(run_dir),
                 json.dumps(config, sort_keys=True), json.dumps(model_metadata, sort_keys=True),
                 json.dumps(versions, sort_keys=True), json.dumps(timings, sort_keys=True),
                 json.dumps(training, sort_keys=True)))
            connection.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)

    def runs(self) -> list[dict[str, Any]]:
        with self._connect() as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT * FROM runs ORDER BY task, model, regime, seed")
            result = []
            for row in rows:
                record = dict(row)
                for key in ("config", "model_metadata", "versions", "timings", "training"):
                    record[key] = json.loads(record[key])
                result.append(record)
            return result

    def metrics(self, molecule: str = "all") -> list[dict[str, Any]]:
        with self._connect() as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute(
                "SELECT m.run_id, r.task, r.model, r.regime, r.seed, m.split, m.molecule, "
                "m.metric, m.value FROM metrics m JOIN runs r USING (run_id) "
                "WHERE m.molecule = ? OR ? = '*'", (molecule, molecule))
            return [dict(row) for row in rows]
