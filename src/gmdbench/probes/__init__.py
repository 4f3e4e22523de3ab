"""Materials probes (DESIGN.md section 9): fixed-path and self-consistent NEB, sliding,
equilibrium and MD stability, run on any ASE calculator."""
