"""Reference methods that label frames: GFN2-/GFN1-xTB, PySCF DFT, EMT, any ASE calculator."""

from gmdbench.reference.registry import ReferenceConfig, ReferenceMethod, resolve_reference

__all__ = ["ReferenceConfig", "ReferenceMethod", "resolve_reference"]
