"""gmd-bench: how far do machine-learning interatomic potentials generalise?"""

__version__ = "0.1.0"
