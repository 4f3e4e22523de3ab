"""Training: losses, per-element reference energies, the trainer."""
