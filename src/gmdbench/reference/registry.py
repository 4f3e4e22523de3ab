"""Reference methods by name, with level-of-theory strings and isolated-atom energies.

Names: ``gfn2-xtb`` (tblite, default), ``gfn1-xtb``, ``emt`` (ASE), ``pyscf:<xc>/<basis>``, or
``package.module:factory`` for any ASE calculator. A method is described by a small picklable
config so that Dask workers can rebuild its calculator where they run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from functools import cached_property
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import CalculationFailed, Calculator
from ase.data import atomic_numbers, chemical_symbols
from pydantic import BaseModel, ConfigDict, Field

from gmdbench.dotted import resolve_dotted
from gmdbench.errors import LabelError, ReferenceMethodError, UnsupportedElementError
from gmdbench.reference.atomic_spin import unpaired_electrons
from gmdbench.reference.pyscf_calculator import PySCFCalculator

_XTB_METHODS = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}
_XTB_RETRIES: list[dict[str, Any]] = [
    {"max_iterations": 500, "mixer_damping": 0.2},
    {"max_iterations": 1000, "mixer_damping": 0.1, "electronic_temperature": 1000.0},
]


class ReferenceConfig(BaseModel):
    """Which reference method labels the frames, its options, and what to retry on failure."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "gfn2-xtb"
    options: dict[str, Any] = Field(default_factory=dict)
    retries: list[dict[str, Any]] | None = Field(
        default=None,
        description="Option sets tried in turn when a calculation fails; None: the method's "
        "defaults (for xTB: more SCF iterations with stronger damping).",
    )


class ReferenceMethod(ABC):
    """A reference method: builds calculators, checks elements, gives isolated-atom energies."""

    def __init__(self, config: ReferenceConfig):
        self.config = config

    # -- to be provided by each kind --------------------------------------------------------
    @property
    @abstractmethod
    def level_of_theory(self) -> str:
        """Human-readable method and program version, stored with every frame."""

    @property
    def supported_elements(self) -> frozenset[str] | None:
        """Elements the method treats; None when the method cannot say (custom calculators)."""
        return None

    @abstractmethod
    def _calculator(self, options: dict[str, Any]) -> Calculator:
        """A new calculator of this method with the given options."""

    def _atom_options(self, symbol: str) -> dict[str, Any]:
        """Extra options for a free atom (its spin state)."""
        return {}

    def _state_options(self, charge: int, multiplicity: int) -> dict[str, Any] | None:
        """Calculator options for a total charge and multiplicity; None: cannot set them."""
        return None

    def state_options(self, charge: int, multiplicity: int, where: str) -> dict[str, Any]:
        """Options that give a calculation the molecule's charge and multiplicity; a method
        that cannot set them refuses anything but a neutral singlet, naming the molecule."""
        if (charge, multiplicity) == (0, 1):
            return {}
        options = self._state_options(charge, multiplicity)
        if options is None:
            raise ReferenceMethodError(
                f"reference {self.config.name!r} cannot set a total charge or spin: {where} has "
                f"charge {charge:+d} and multiplicity {multiplicity}; use gfn2-xtb, gfn1-xtb or "
                "pyscf:<functional>/<basis>")
        return options

    def atoms_options(self, atoms: Atoms) -> dict[str, Any]:
        """:meth:`state_options` of a structure whose ``info`` carries charge and multiplicity
        (conformers from SMILES do; a structure without them is a neutral singlet)."""
        name = atoms.info.get("smiles", atoms.get_chemical_formula())
        return self.state_options(int(atoms.info.get("charge", 0)),
                                  int(atoms.info.get("multiplicity", 1)), f"molecule {name}")

    # -- shared behaviour -------------------------------------------------------------------
    @property
    def default_retries(self) -> list[dict[str, Any]]:
        return []

    def attempts(self) -> list[dict[str, Any]]:
        """Option sets to try in order: the configured options, then each retry on top."""
        retries = self.default_retries if self.config.retries is None else self.config.retries
        base = dict(self.config.options)
        return [base] + [{**base, **retry} for retry in retries]

    def make_calculator(self, overrides: dict[str, Any] | None = None) -> Calculator:
        return self._calculator({**self.config.options, **(overrides or {})})

    def check_elements(self, elements: Iterable[str], where: str) -> None:
        """Refuse, before any work, elements the method cannot treat."""
        supported = self.supported_elements
        if supported is None:
            return
        missing = sorted(set(elements) - supported, key=lambda s: atomic_numbers[s])
        if missing:
            raise UnsupportedElementError(
                f"reference {self.config.name!r} cannot treat element(s) {', '.join(missing)} "
                f"found in {where}"
            )

    def isolated_atom_energies(self, elements: Iterable[str]) -> dict[str, float]:
        """Energy (eV) of each free atom in its ground-state spin, as the method gives it."""
        energies = {}
        for symbol in sorted(set(elements), key=lambda s: atomic_numbers[s]):
            atoms = Atoms(symbol, positions=[[0.0, 0.0, 0.0]])
            n_unpaired = unpaired_electrons(symbol)
            atoms.set_initial_magnetic_moments([float(n_unpaired)])
            energy, _ = label_with_retries(atoms, self, extra=self._atom_options(symbol))
            energies[symbol] = energy
        return energies


class _XTBMethod(ReferenceMethod):
    @cached_property
    def _tblite_version(self) -> str:
        from importlib.metadata import version

        return version("tblite")

    @property
    def level_of_theory(self) -> str:
        return f"{_XTB_METHODS[self.config.name]} (tblite {self._tblite_version})"

    @property
    def supported_elements(self) -> frozenset[str]:
        return frozenset(chemical_symbols[1:87])

    @property
    def default_retries(self) -> list[dict[str, Any]]:
        return _XTB_RETRIES

    def _calculator(self, options: dict[str, Any]) -> Calculator:
        from tblite.ase import TBLite

        return TBLite(method=_XTB_METHODS[self.config.name], verbosity=0, **options)

    def _atom_options(self, symbol: str) -> dict[str, Any]:
        return {"multiplicity": unpaired_electrons(symbol) + 1}

    def _state_options(self, charge: int, multiplicity: int) -> dict[str, Any]:
        return {"charge": charge, "multiplicity": multiplicity}


class _EMTMethod(ReferenceMethod):
    @property
    def level_of_theory(self) -> str:
        import ase

        return f"EMT (ASE {ase.__version__})"

    @property
    def supported_elements(self) -> frozenset[str]:
        from ase.calculators.emt import parameters

        return frozenset(parameters)

    def _calculator(self, options: dict[str, Any]) -> Calculator:
        from ase.calculators.emt import EMT

        return EMT(**options)


class _PySCFMethod(ReferenceMethod):
    def __init__(self, config: ReferenceConfig):
        super().__init__(config)
        spec = config.name.split(":", 1)[1]
        if spec.count("/") != 1 or not all(spec.split("/")):
            raise ReferenceMethodError(
                f"reference {config.name!r}: expected pyscf:<functional>/<basis>, "
                "e.g. pyscf:b3lyp/def2-svp"
            )
        self.xc, self.basis = spec.split("/")
        from pyscf.dft import libxc  # optional heavy library: only for PySCF references

        try:
            libxc.parse_xc(self.xc)
        except (KeyError, ValueError) as error:
            raise ReferenceMethodError(
                f"reference {config.name!r}: unknown functional {self.xc!r} (LibXC names such "
                "as b3lyp, pbe, pbe0, wb97x)") from error

    @property
    def level_of_theory(self) -> str:
        import pyscf

        return f"{self.xc.upper()}/{self.basis} (PySCF {pyscf.__version__})"

    @cached_property
    def supported_elements(self) -> frozenset[str]:
        from pyscf import gto
        from pyscf.lib.exceptions import BasisNotFoundError

        supported = set()
        for symbol in chemical_symbols[1:]:  # every element a basis may cover (ANO-RCC: to Cm)
            try:
                if gto.basis.load(self.basis, symbol):
                    supported.add(symbol)
            except (BasisNotFoundError, KeyError, ValueError):  # no basis for this element
                continue
        if not supported:
            raise ReferenceMethodError(f"reference {self.config.name!r}: unknown basis set")
        return frozenset(supported)

    @property
    def default_retries(self) -> list[dict[str, Any]]:
        return [{"max_cycle": 300}]

    def _calculator(self, options: dict[str, Any]) -> Calculator:
        return PySCFCalculator(xc=self.xc, basis=self.basis, **options)

    def _atom_options(self, symbol: str) -> dict[str, Any]:
        return {"spin": unpaired_electrons(symbol)}

    def _state_options(self, charge: int, multiplicity: int) -> dict[str, Any]:
        return {"charge": charge, "spin": multiplicity - 1}  # PySCF's spin is 2S


class _CustomMethod(ReferenceMethod):
    """Any ASE calculator from ``package.module:factory`` (a class or a function)."""

    def __init__(self, config: ReferenceConfig):
        super().__init__(config)
        self.factory = resolve_dotted(config.name, "reference", ReferenceMethodError)

    @cached_property
    def _probe(self) -> Calculator:
        return self.factory(**self.config.options)

    @property
    def level_of_theory(self) -> str:
        return str(getattr(self._probe, "level_of_theory", f"ASE calculator {self.config.name}"))

    @property
    def supported_elements(self) -> frozenset[str] | None:
        elements = getattr(self._probe, "supported_elements", None)
        return None if elements is None else frozenset(elements)

    def _calculator(self, options: dict[str, Any]) -> Calculator:
        return self.factory(**options)


def resolve_reference(config: ReferenceConfig | str) -> ReferenceMethod:
    """Build the reference method a name (or config) refers to."""
    if isinstance(config, str):
        config = ReferenceConfig(name=config)
    name = config.name
    if name in _XTB_METHODS:
        return _XTBMethod(config)
    if name == "emt":
        return _EMTMethod(config)
    if name.startswith("pyscf:"):
        return _PySCFMethod(config)
    if ":" in name:
        return _CustomMethod(config)
    raise ReferenceMethodError(
        f"unknown reference method {name!r}: use gfn2-xtb, gfn1-xtb, emt, "
        "pyscf:<functional>/<basis> or package.module:factory"
    )


def label_with_retries(
    atoms: Atoms, method: ReferenceMethod, extra: dict[str, Any] | None = None,
    copy: bool = True,
) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/A) of ``atoms`` from a fresh calculator, retrying on failure.

    A fresh calculator per frame makes every label a function of its geometry alone (no SCF
    guess carried over from a previous frame), so labels equal a direct call on the same
    geometry and a resumed build reproduces an uninterrupted one bit for bit. ``copy=False``
    lets a caller that owns a throwaway ``atoms`` skip a copy (its calculator is replaced).
    """
    reasons = []
    probe = atoms.copy() if copy else atoms
    state = method.atoms_options(atoms)
    for options in method.attempts():
        probe.calc = method.make_calculator({**options, **state, **(extra or {})})
        try:
            energy = float(probe.get_potential_energy())
            forces = np.array(probe.get_forces(), dtype=float)
        # only the method's own failures (ASE's CalculationFailed: tblite's and our PySCF
        # calculator's SCF not converged) are retried and recorded; anything else is a bug or
        # a broken installation and stops the build with its traceback
        except CalculationFailed as error:
            reasons.append(f"{type(error).__name__}: {one_line(str(error))}")
            continue
        try:
            check_finite(energy, forces)
        except LabelError as error:
            reasons.append(str(error))
            continue
        return energy, forces
    raise LabelError("; ".join(reasons))


def one_line(text: str) -> str:
    return " ".join(text.split())


def check_finite(energy: float, forces: np.ndarray) -> None:
    if not np.isfinite(energy):
        raise LabelError(f"non-finite energy ({energy})")
    if not np.all(np.isfinite(forces)):
        raise LabelError(f"non-finite forces ({int((~np.isfinite(forces)).sum())} components)")
