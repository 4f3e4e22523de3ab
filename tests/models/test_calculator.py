import numpy as np
import pytest
import torch
from ase import units
from ase.build import molecule
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta

from gmdbench.runner.runs import run_calculator


@pytest.mark.parametrize("index", [0, 2], ids=["schnet", "mace"])
def test_calculator_runs_langevin_md(trained_runs, index):
    _, run_dirs = trained_runs
    atoms = molecule("C2H6")
    atoms.calc = run_calculator(run_dirs[index])
    thermalize_momenta(atoms, 300, rng=np.random.default_rng(0))
    dynamics = Langevin(atoms, 0.5 * units.fs, temperature_K=300, friction=0.01 / units.fs,
                        fixcm=False, rng=np.random.default_rng(1))
    start = atoms.positions.copy()
    dynamics.run(20)
    assert dynamics.nsteps == 20
    assert np.isfinite(atoms.get_potential_energy())
    assert 0 < np.abs(atoms.positions - start).max() < 1.0


def test_calculator_forces_are_minus_the_energy_gradient(trained_runs):
    _, run_dirs = trained_runs
    calc = run_calculator(run_dirs[0], dtype=torch.float64)
    atoms = molecule("C2H6")
    atoms.rattle(0.03, seed=2)
    atoms.calc = calc
    forces = atoms.get_forces()
    delta = 1e-5
    for atom, axis in [(0, 0), (3, 2), (7, 1)]:
        probe = atoms.copy()
        probe.calc = calc
        probe.positions[atom, axis] += delta
        plus = probe.get_potential_energy()
        probe.positions[atom, axis] -= 2 * delta
        minus = probe.get_potential_energy()
        assert forces[atom, axis] == pytest.approx(-(plus - minus) / (2 * delta), abs=1e-6)
