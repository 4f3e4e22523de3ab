"""SMILES -> RDKit molecule with hydrogens -> seeded ETKDG conformers -> MMFF94 -> ase.Atoms.

Conformers are the starting points of every trajectory, so they must be reproducible: ETKDG is
seeded, runs single-threaded, and no conformer is pruned (each trajectory gets its own).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from ase import Atoms
from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem

from gmdbench.errors import ConformerError, InvalidSmilesError

RDLogger.DisableLog("rdApp.*")


def parse_smiles(smiles: str) -> Chem.Mol:
    """Parse and sanitise a SMILES string, raising an error that names it on failure."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise InvalidSmilesError(f"invalid SMILES {smiles!r}: empty string")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise InvalidSmilesError(f"invalid SMILES {smiles!r}: RDKit cannot parse or sanitise it")
    return mol


@lru_cache(maxsize=4096)
def canonical_smiles(smiles: str) -> str:
    """RDKit canonical SMILES (no hydrogens), the identity of a molecule everywhere in gmd-bench."""
    return Chem.MolToSmiles(parse_smiles(smiles))


def elements_of(smiles: str) -> set[str]:
    """Element symbols of a molecule, hydrogens included."""
    mol = Chem.AddHs(parse_smiles(smiles))
    return {atom.GetSymbol() for atom in mol.GetAtoms()}


def atomic_numbers_of(smiles: str) -> np.ndarray:
    """Atomic numbers with explicit hydrogens, in the atom order of :func:`embed_conformers`."""
    mol = Chem.AddHs(parse_smiles(smiles))
    return np.array([atom.GetAtomicNum() for atom in mol.GetAtoms()], dtype=int)


def charge_and_multiplicity(smiles: str) -> tuple[int, int]:
    """Total charge (sum of formal charges) and spin multiplicity (radical electrons + 1, the
    high-spin state RDKit's radical count implies) of a molecule, from its SMILES."""
    mol = parse_smiles(smiles)
    radicals = sum(atom.GetNumRadicalElectrons() for atom in mol.GetAtoms())
    return int(Chem.GetFormalCharge(mol)), int(radicals) + 1


def embed_conformers(smiles: str, n_conformers: int, seed: int) -> list[Atoms]:
    """Return ``n_conformers`` MMFF94-optimised conformers of ``smiles`` as ase.Atoms whose
    ``info`` carries the molecule's total ``charge`` and spin ``multiplicity``.

    The same (smiles, n_conformers, seed) always gives the same coordinates. Conformer ``i`` of a
    larger request equals conformer ``i`` of a smaller one only if RDKit says so; callers that
    need stable assignment request a fixed number per molecule.
    """
    if n_conformers < 1:
        raise ValueError("n_conformers must be >= 1")
    mol = Chem.AddHs(parse_smiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed) % (2**31)
    params.pruneRmsThresh = -1.0
    params.numThreads = 1
    conf_ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n_conformers, params=params))
    if len(conf_ids) < n_conformers:
        params.useRandomCoords = True
        mol.RemoveAllConformers()
        conf_ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n_conformers, params=params))
    if len(conf_ids) < n_conformers:
        raise ConformerError(
            f"RDKit embedded {len(conf_ids)} of {n_conformers} conformers for SMILES {smiles!r}"
        )
    if not AllChem.MMFFHasAllMoleculeParams(mol):
        raise ConformerError(f"MMFF94 has no parameters for SMILES {smiles!r}")
    results = AllChem.MMFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=2000)
    if any(status == -1 for status, _ in results):
        raise ConformerError(f"MMFF94 set-up failed for SMILES {smiles!r}")
    symbols = [atom.GetSymbol() for atom in mol.GetAtoms()]
    conformers = []
    for conf_id in conf_ids:
        positions = np.asarray(mol.GetConformer(conf_id).GetPositions(), dtype=float)
        atoms = Atoms(symbols=symbols, positions=positions - positions.mean(axis=0))
        atoms.info["smiles"] = canonical_smiles(smiles)
        atoms.info["charge"], atoms.info["multiplicity"] = charge_and_multiplicity(smiles)
        conformers.append(atoms)
    return conformers
