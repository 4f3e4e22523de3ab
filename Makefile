VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install quick test lint bench

install:
	./scripts/install.sh

# The main job on embedded defaults (local Dask cluster, SQLite store); it prints the summary.
quick: install
	$(BIN)/gmd data build fragment_duplication --preset quick --out datasets/fragment_duplication-quick.db

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/label_overhead.py
