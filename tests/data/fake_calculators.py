"""ASE calculators for tests of the `module:factory` reference path and of failure handling."""

from __future__ import annotations

import os
import threading

import numpy as np
from ase.calculators.calculator import CalculationFailed, Calculator, all_changes
from ase.calculators.emt import EMT


class _Wrapped(Calculator):
    implemented_properties = ["energy", "forces"]  # noqa: RUF012 - ASE's own convention

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        probe = self.atoms.copy()
        probe.calc = EMT()
        self.results = {"energy": probe.get_potential_energy(), "forces": probe.get_forces()}
        self.corrupt()

    def corrupt(self) -> None:
        """Hook for subclasses."""


class NaNForcesForPropane(_Wrapped):
    """EMT, except that molecules with three carbons get NaN forces."""

    level_of_theory = "EMT with NaN forces for C3 (test)"

    def corrupt(self) -> None:
        if (self.atoms.numbers == 6).sum() == 3:
            self.results["forces"] = np.full_like(self.results["forces"], np.nan)


class SCFFailsForPropane(_Wrapped):
    """EMT, except that molecules with three carbons raise CalculationFailed like an SCF."""

    level_of_theory = "EMT failing for C3 (test)"

    def corrupt(self) -> None:
        if (self.atoms.numbers == 6).sum() == 3:
            raise CalculationFailed("SCF not converged in 250 cycles (simulated)")


def emt_factory(**options):
    return EMT(**options)


class NaNForcesUnlessDamped(_Wrapped):
    """EMT whose forces are NaN unless the option ``damped=True`` is given: a non-finite label
    that a retry with other options rescues."""

    default_parameters = {"damped": False}  # noqa: RUF012 - ASE's own convention

    def corrupt(self) -> None:
        if not self.parameters.damped:
            self.results["forces"] = np.full_like(self.results["forces"], np.nan)


class EMTForCHNO(_Wrapped):
    """EMT that says which elements it treats, as a user's calculator may."""

    level_of_theory = "EMT for C, H, N, O (test)"
    supported_elements = ("H", "C", "N", "O")


class ForcesTimes100(_Wrapped):
    """EMT with forces (not energies) scaled by 100: a deliberately broken model for probes."""

    def corrupt(self) -> None:
        self.results["forces"] = 100.0 * self.results["forces"]


class UphillForces(_Wrapped):
    """EMT with forces pointing uphill (x -10): a model whose MD must run away."""

    def corrupt(self) -> None:
        self.results["forces"] = -10.0 * self.results["forces"]


class TypeErrorForPropane(_Wrapped):
    """EMT, except that molecules with three carbons hit a bug (a TypeError): not a reference
    failure, so a build must stop instead of recording it as a failed frame."""

    level_of_theory = "EMT with a bug for C3 (test)"

    def corrupt(self) -> None:
        if (self.atoms.numbers == 6).sum() == 3:
            raise TypeError("unsupported operand type(s) (simulated bug)")


class PausesAfterCalls(_Wrapped):
    """EMT. Where the environment names a FIFO (``GMD_PAUSE_FIFO``), the process's
    ``GMD_PAUSE_AFTER``-th call writes one line into it and then blocks for good: a build a test
    kills at a known point, synchronised on that line instead of a clock."""

    level_of_theory = "EMT (test)"
    calls = 0  # per process: the Dask worker that labels

    def corrupt(self) -> None:
        fifo = os.environ.get("GMD_PAUSE_FIFO")
        PausesAfterCalls.calls += 1
        if fifo and PausesAfterCalls.calls == int(os.environ["GMD_PAUSE_AFTER"]):
            with open(fifo, "w") as stream:
                stream.write("PAUSED\n")
            threading.Event().wait()  # until the test kills the build
