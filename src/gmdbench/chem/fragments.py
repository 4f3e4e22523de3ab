"""A library of SMARTS fragments and counting of fragments per molecule.

Fragment counts are how a report says what an OOD molecule has that training lacked (a second
carboxylic acid, an amine beside a hydroxyl, a longer chain). Users may add their own SMARTS in a
task YAML; names from this library can be referred to without writing SMARTS.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from rdkit import Chem

from gmdbench.chem.molecules import parse_smiles
from gmdbench.errors import TaskSpecError

FRAGMENT_LIBRARY: dict[str, str] = {
    "hydroxyl": "[OX2H1][#6;!$([#6]=[O,S,N])]",
    "aldehyde": "[CX3;H1,H2;!$([#6][OX2,NX3,SX2])]=[OX1]",
    "ketone": "[#6][CX3](=[OX1])[#6]",
    "carboxylic_acid": "[CX3](=[OX1])[OX2H1]",
    "ester": "[#6][CX3](=[OX1])[OX2H0][#6]",
    "ether": "[OX2H0]([#6;!$([#6]=[O,S,N])])[#6;!$([#6]=[O,S,N])]",
    "primary_amine": "[NX3;H2][#6;!$([#6]=[O,S,N])]",
    "amide": "[NX3][CX3](=[OX1])",
    "nitrile": "[NX1]#[CX2]",
    "halide": "[#6][F,Cl,Br,I]",
    "thiol": "[#16X2H1]",
    "alkene": "[CX3]=[CX3]",
    "aromatic_ring": "a1aaaaa1",
    "methyl": "[CH3X4]",
    "methylene": "[CH2X4]",
}


@lru_cache(maxsize=1024)
def compile_smarts(smarts: str, name: str = "") -> Chem.Mol:
    pattern = Chem.MolFromSmarts(smarts)
    if pattern is None:
        label = f" of fragment {name!r}" if name else ""
        raise TaskSpecError(f"invalid SMARTS {smarts!r}{label}")
    return pattern


def resolve_fragments(fragments: Mapping[str, str | None] | list[str] | None) -> dict[str, str]:
    """Map fragment names to SMARTS: library names may be given without SMARTS."""
    if fragments is None:
        return dict(FRAGMENT_LIBRARY)
    items = {name: None for name in fragments} if isinstance(fragments, list) else fragments
    resolved: dict[str, str] = {}
    for name, smarts in items.items():
        if smarts is None:
            if name not in FRAGMENT_LIBRARY:
                known = ", ".join(sorted(FRAGMENT_LIBRARY))
                raise TaskSpecError(
                    f"fragment {name!r} has no SMARTS and is not in the library ({known})"
                )
            smarts = FRAGMENT_LIBRARY[name]
        compile_smarts(smarts, name)
        resolved[name] = smarts
    return resolved


def count_fragments(
    smiles: str, fragments: Mapping[str, str | None] | list[str] | None = None
) -> dict[str, int]:
    """Number of non-overlapping-by-atom-set matches of each fragment in a molecule.

    Hydrogens are made explicit first so that SMARTS with H counts see the real molecule.
    """
    mol = Chem.AddHs(parse_smiles(smiles))
    return {
        name: len(mol.GetSubstructMatches(compile_smarts(smarts, name), uniquify=True))
        for name, smarts in resolve_fragments(fragments).items()
    }


def fragment_atom_labels(
    smiles: str, fragments: Mapping[str, str | None] | list[str] | None = None
) -> list[list[str]]:
    """For each atom (with explicit H, RDKit order), the fragments whose match contains it."""
    mol = Chem.AddHs(parse_smiles(smiles))
    labels: list[list[str]] = [[] for _ in range(mol.GetNumAtoms())]
    for name, smarts in resolve_fragments(fragments).items():
        for match in mol.GetSubstructMatches(compile_smarts(smarts, name), uniquify=True):
            for index in match:
                if name not in labels[index]:
                    labels[index].append(name)
    return labels
