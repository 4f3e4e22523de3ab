VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install quick test lint bench

install:
	./scripts/install.sh

# The main job on embedded defaults (local Dask cluster, SQLite stores): the quick
# fragment_duplication dataset, SchNet and a small MACE trained on it, the ID-vs-OOD report.
quick: install
	$(BIN)/gmd run quick

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/label_overhead.py
