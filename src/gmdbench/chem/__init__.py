"""Chemistry: SMILES to conformers and atoms, and a SMARTS fragment library."""
