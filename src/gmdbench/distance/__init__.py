"""Distance of a structure from the training manifold (DESIGN.md section 7)."""
