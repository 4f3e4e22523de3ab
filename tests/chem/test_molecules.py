import numpy as np
import pytest

from gmdbench.chem.molecules import (
    atomic_numbers_of,
    canonical_smiles,
    elements_of,
    embed_conformers,
)
from gmdbench.errors import InvalidSmilesError


def test_conformers_are_deterministic_for_a_seed():
    first = embed_conformers("OC(=O)CCC(=O)O", 3, seed=11)
    again = embed_conformers("OC(=O)CCC(=O)O", 3, seed=11)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)


def test_conformers_differ_between_seeds_and_within_a_request():
    a = embed_conformers("CCCCO", 2, seed=1)
    b = embed_conformers("CCCCO", 2, seed=2)
    assert not np.allclose(a[0].positions, b[0].positions)
    assert not np.allclose(a[0].positions, a[1].positions)


def test_conformer_atoms_have_hydrogens_in_rdkit_order():
    (atoms,) = embed_conformers("CCO", 1, seed=0)
    assert atoms.get_chemical_formula() == "C2H6O"
    np.testing.assert_array_equal(atoms.numbers, atomic_numbers_of("CCO"))
    assert not atoms.pbc.any()
    # MMFF-optimised: C-C bond near 1.51 A
    assert 1.45 < atoms.get_distance(0, 1) < 1.56


def test_canonical_smiles_identifies_molecules():
    assert canonical_smiles("OCC") == canonical_smiles("C(O)C") == "CCO"
    assert elements_of("NCCO") == {"N", "C", "O", "H"}


@pytest.mark.parametrize("bad", ["C1CC", "not-a-smiles", "", "C(C"])
def test_invalid_smiles_is_named(bad):
    with pytest.raises(InvalidSmilesError, match="invalid SMILES"):
        canonical_smiles(bad)
