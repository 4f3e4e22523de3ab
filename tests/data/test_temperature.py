"""The kinetic temperature gmd data info prints is ASE's, with FixCom's 3N - 3 dof."""

import numpy as np
import pytest
from ase.build import molecule
from ase.constraints import FixCom
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from gmdbench.data.store import DatasetStore
from gmdbench.data.temperature import kinetic_temperature


def test_kinetic_temperature_matches_ase_with_a_fixed_centre_of_mass():
    atoms = molecule("CH3COOH")
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(1))
    Stationary(atoms)
    atoms.set_constraint(FixCom())
    assert kinetic_temperature(atoms.get_momenta(), atoms.numbers) == pytest.approx(
        atoms.get_temperature(), rel=1e-12)


def test_split_temperatures_are_read_from_the_stored_momenta(tiny_dataset):
    store = DatasetStore(tiny_dataset)
    summary = store.summary()
    per_split = summary["kinetic_temperature_per_split"]
    assert set(per_split) == {"train", "val", "id_test", "ood_test"}
    train = [kinetic_temperature(row.momenta, row.numbers) for row in store.rows(split="train")]
    assert per_split["train"]["mean"] == pytest.approx(np.mean(train))
    assert per_split["train"]["frames"] == len(train)
    assert summary["temperature_K"] == 300.0


def test_the_first_md_frame_starts_at_twice_the_target(tiny_dataset):
    """Momenta start at exactly 2T (the conformer sits at a minimum: half flows into the
    potential), so the trajectory settles near T rather than near T/2."""
    from gmdbench.chem.molecules import embed_conformers
    from gmdbench.config import SamplerConfig
    from gmdbench.data.sampling import initial_md_frame
    from gmdbench.reference.registry import resolve_reference

    conformer = embed_conformers("CCO", 1, seed=0)[0]
    frame = initial_md_frame(conformer, resolve_reference("gfn2-xtb"), SamplerConfig(), seed=3)
    assert kinetic_temperature(frame.momenta, conformer.numbers) == pytest.approx(600.0)
    assert np.allclose(frame.momenta.sum(axis=0), 0.0, atol=1e-12)
