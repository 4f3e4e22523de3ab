"""The top layer: run matrices and probe suites, the steps they chain, and their executors."""
