import pytest

from gmdbench.chem.fragments import FRAGMENT_LIBRARY, count_fragments, fragment_atom_labels
from gmdbench.errors import TaskSpecError

EXPECTED = {
    "OC(=O)CCC(=O)O": {"carboxylic_acid": 2, "hydroxyl": 0, "aldehyde": 0, "methylene": 2},
    "CCO": {"hydroxyl": 1, "carboxylic_acid": 0, "methyl": 1},
    "O=CCCC": {"aldehyde": 1, "ketone": 0},
    "C=O": {"aldehyde": 1},
    "OC=O": {"carboxylic_acid": 1, "aldehyde": 0, "hydroxyl": 0},
    "CC(C)=O": {"ketone": 1, "aldehyde": 0},
    "CCOC(C)=O": {"ester": 1, "ether": 0, "carboxylic_acid": 0},
    "CCOCC": {"ether": 1},
    "NCCCO": {"primary_amine": 1, "hydroxyl": 1},
    "CC(N)=O": {"amide": 1, "primary_amine": 0},
    "CC#N": {"nitrile": 1},
    "ClCCBr": {"halide": 2},
    "CCS": {"thiol": 1},
    "C=CC=C": {"alkene": 2},
    "c1ccc(cc1)c1ccccc1": {"aromatic_ring": 2},
}


@pytest.mark.parametrize("smiles", EXPECTED)
def test_fragment_counts(smiles):
    counts = count_fragments(smiles)
    for name, n in EXPECTED[smiles].items():
        assert counts[name] == n, (smiles, name, counts)


def test_library_has_the_required_fragments():
    required = {"hydroxyl", "aldehyde", "ketone", "carboxylic_acid", "ester", "ether",
                "primary_amine", "amide", "nitrile", "halide", "thiol", "alkene", "aromatic_ring"}
    assert required <= set(FRAGMENT_LIBRARY)


def test_user_smarts_and_subset():
    counts = count_fragments("OCCO", {"diol_oxygen": "[OX2H]", "hydroxyl": None})
    assert counts == {"diol_oxygen": 2, "hydroxyl": 2}


def test_invalid_or_unknown_fragments_are_named():
    with pytest.raises(TaskSpecError, match="not_a_fragment"):
        count_fragments("CCO", ["not_a_fragment"])
    with pytest.raises(TaskSpecError, match="invalid SMARTS"):
        count_fragments("CCO", {"broken": "[C"})


def test_atom_labels_mark_fragment_atoms():
    labels = fragment_atom_labels("CC(=O)O", ["carboxylic_acid", "methyl"])
    assert labels[0] == ["methyl"]
    assert labels[1] == labels[2] == labels[3] == ["carboxylic_acid"]
