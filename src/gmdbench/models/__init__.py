"""Models: one adapter per architecture around its reference library, one protocol for all."""
