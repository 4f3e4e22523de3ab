"""TaskSpec: a compositional-generalisation task written as YAML.

A task lists molecule *families* (explicit SMILES or a homologous series) and gives each a role:
``train`` families feed the train, val and id_test splits (by trajectory), ``ood`` families feed
ood_test only. Fragments (SMARTS, or names from the library) say what each molecule contains, so
a report can show what an OOD molecule has that training lacked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gmdbench.chem.fragments import resolve_fragments
from gmdbench.chem.molecules import canonical_smiles
from gmdbench.config import format_validation_error, load_yaml
from gmdbench.errors import GmdError, TaskSpecError, UnknownTaskError
from gmdbench.names import SafeName

BUILTIN_DIR = Path(__file__).parent / "builtin"


class HomologousSeries(BaseModel):
    """SMILES ``prefix + unit * k + suffix`` for k in ``count`` (both ends included).

    E.g. n-alkanols C1-C8: prefix "", unit "C", suffix "O", count [1, 8].
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = ""
    unit: str
    suffix: str = ""
    count: tuple[int, int]

    @field_validator("count")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if low < 0 or high < low:
            raise ValueError(f"count must be [low, high] with 0 <= low <= high, got {list(value)}")
        return value

    def expand(self) -> list[str]:
        return [self.prefix + self.unit * k + self.suffix for k in range(self.count[0],
                                                                          self.count[1] + 1)]


class MoleculeFamily(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    role: Literal["train", "ood"]
    smiles: list[str] | None = None
    series: HomologousSeries | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> MoleculeFamily:
        if (self.smiles is None) == (self.series is None):
            raise ValueError(f"family {self.name!r} needs exactly one of 'smiles' or 'series'")
        if self.smiles is not None and not self.smiles:
            raise ValueError(f"family {self.name!r} has an empty SMILES list")
        return self

    def members(self) -> list[str]:
        return list(self.smiles) if self.smiles is not None else self.series.expand()


class TaskSpec(BaseModel):
    """A task. Unknown keys are rejected; both roles must have molecules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: SafeName
    description: str = ""
    variant: Literal["base", "augmented"] = "base"
    fragments: dict[str, str | None] | list[str] = Field(default_factory=list)
    families: list[MoleculeFamily]

    @model_validator(mode="after")
    def _roles_filled(self) -> TaskSpec:
        roles = {family.role for family in self.families}
        for role in ("train", "ood"):
            if role not in roles:
                raise ValueError(f"task {self.name!r}: role {role!r} is empty (no family has it)")
        return self

    def fragment_smarts(self) -> dict[str, str]:
        return resolve_fragments(self.fragments or None)

    def molecules(self) -> list[Molecule]:
        """Every molecule once, in spec order, with its canonical SMILES, family and role.

        Refuses an OOD molecule that also plays a training role and a molecule listed twice.
        """
        seen: dict[str, Molecule] = {}
        for family in self.families:
            for raw in family.members():
                smiles = canonical_smiles(raw)
                if smiles in seen:
                    other = seen[smiles]
                    if other.role != family.role:
                        raise TaskSpecError(
                            f"task {self.name!r}: OOD molecule {smiles} also plays a training "
                            f"role (families {other.family!r} and {family.name!r})"
                        )
                    raise TaskSpecError(
                        f"task {self.name!r}: molecule {smiles} is listed twice (families "
                        f"{other.family!r} and {family.name!r})"
                    )
                seen[smiles] = Molecule(len(seen), smiles, family.name, family.role)
        return list(seen.values())


@dataclass(frozen=True)
class Molecule:
    molecule_id: int
    smiles: str
    family: str
    role: Literal["train", "ood"]


def builtin_task_names() -> list[str]:
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.yaml"))


def load_task(name_or_path: str | Path) -> TaskSpec:
    """A built-in task by name, or a user's task YAML by path; validated and checked."""
    path = BUILTIN_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        path = Path(name_or_path)
        if not path.is_file():
            raise UnknownTaskError(
                f"unknown task {str(name_or_path)!r}: built-in tasks are "
                f"{', '.join(builtin_task_names())}; or give the path of a task YAML"
            )
    data = load_yaml(path, "task", TaskSpecError)
    if not isinstance(data, dict):
        raise TaskSpecError(f"task {path}: expected a mapping at the top level")
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as error:
        raise TaskSpecError(format_validation_error(error, f"task {path}", TaskSpec)) from error
    try:
        spec.molecules()
        spec.fragment_smarts()
    except GmdError as error:
        raise type(error)(f"task {path}: {error}") from error
    return spec
