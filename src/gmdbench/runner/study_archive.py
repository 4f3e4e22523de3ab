"""The committed record of an active-learning study, unit by unit.

A powered study (ten seeds, five rules, four rounds) takes more 2-core hours than one working
session, and a session's machine does not outlive it. So the study is archived as it goes, the
way the reference table archives runs: each finished *unit*, one (rule, seed), is written once
to ``units/RULE-seedN.json`` (its rounds' curve points, the frames each round picked, the
hashes of the datasets it trained on, where and how long it ran) and, for the ensemble rule, the
round-0 ensemble's uncertainty files beside it. A study resumed from the archive on a fresh
machine runs only the units it does not hold. Models are not archived, only their numbers: a
resumed seed trains its round-0 model again (the same config and seed), which costs one base
training per seed and keeps the archive small.

The archive knows nothing of the study's config class (``pipeline/`` sits above this layer): it
stores the config as JSON, and the pipeline decides whether a saved config is the same study.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gmdbench.errors import GmdError
from gmdbench.files import write_bytes, write_text

STUDY_FILE = "study.json"
# what a finished study leaves in its output folder that the archive keeps, at the end
FINISHED_CURVE = "curve.json"
# what of a round-0 uncertainty folder is archived: its numbers, not its figures
ARCHIVED_SUFFIXES = (".json", ".csv")


class ArchivedUnit(BaseModel):
    """One (rule, seed) of a study, finished: all that the report and the paired tests read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    seed: int
    points: list[dict[str, Any]] = Field(description="the curve points, round 0 first")
    picks: list[dict[str, Any]] = Field(
        description="each round's picks.json (pool indices and the frames they name)")
    base_dataset_hash: str
    pool_dataset_hash: str
    device: str
    machine: str = Field(description="the CPU the unit ran on: its labels' last bits and its "
                         "training's round-off depend on it")
    versions: dict[str, str]
    wall_seconds: float


def machine_name() -> str:
    """The CPU model (``/proc/cpuinfo``), else the platform's processor string."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


class StudyArchive:
    """The folder a study is committed to (e.g. ``reference/active-learning/NAME``)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def saved_config(self) -> dict[str, Any] | None:
        """The config the archive's units were made with, None for a new archive."""
        path = self.folder / STUDY_FILE
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())["config"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise GmdError(f"{path} is not a study archive's record ({error})") from error

    def start(self, config: dict[str, Any]) -> None:
        """Record the study's config in a new archive (an existing one keeps its own)."""
        if self.saved_config() is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_text(self.folder / STUDY_FILE, json.dumps({"config": config}, indent=2))

    def _unit_path(self, rule: str, seed: int) -> Path:
        return self.folder / "units" / f"{rule}-seed{seed}.json"

    def uncertainty_dir(self, seed: int) -> Path:
        return self.folder / "uncertainty" / f"round0-seed{seed}"

    def unit(self, rule: str, seed: int) -> ArchivedUnit | None:
        """The archived unit, None if it has not finished anywhere yet."""
        path = self._unit_path(rule, seed)
        if not path.exists():
            return None
        try:
            return ArchivedUnit.model_validate_json(path.read_text())
        except ValueError as error:
            raise GmdError(f"{path} is not an archived study unit: {error}") from error

    def save_unit(self, unit: ArchivedUnit, uncertainty: Path | None = None) -> Path:
        """Write a finished unit (and the round-0 uncertainty folder it made, first: a unit on
        disk means its files are complete). Of that folder only the numbers are kept (the
        per-frame table and the summary, ~0.3 MB a seed): its figures (~0.5 MB a seed, which
        git cannot compress) would make the clone heavy for nothing the checks read."""
        if uncertainty is not None:
            target = self.uncertainty_dir(unit.seed)
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(uncertainty.iterdir()):
                if path.is_file() and path.suffix in ARCHIVED_SUFFIXES:
                    write_bytes(target / path.name, path.read_bytes())
        path = self._unit_path(unit.rule, unit.seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, unit.model_dump_json(indent=2))
        return path

    def restore_uncertainty(self, seed: int, out_dir: Path) -> bool:
        """Copy a seed's archived round-0 uncertainty into a study's output folder, where the
        report reads it; False where the archive holds none."""
        source = self.uncertainty_dir(seed)
        if not (source / "uncertainty.json").exists():
            return False
        target = out_dir / "uncertainty" / source.name
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(source.iterdir()):
            if path.is_file():
                write_bytes(target / path.name, path.read_bytes())
        return True

    def save_finished(self, out_dir: Path) -> None:
        """The finished study's curve, beside its units (its report is then rebuilt from the
        archive's own files, so it shows what a clone can recompute and nothing more)."""
        write_bytes(self.folder / FINISHED_CURVE, (out_dir / FINISHED_CURVE).read_bytes())
