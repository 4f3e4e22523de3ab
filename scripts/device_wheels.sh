#!/usr/bin/env bash
# Wheels that bench/gpu_check.py needs on a lent GPU machine (Python 3.12 with a CUDA torch,
# e3nn and torch-geometric already there; none of the rest), downloaded here into .whl/ (git
# ignores it: `echo /.whl/ >> .git/info/exclude`). Carry `.whl` and the quick dataset, then
# follow the usage line in bench/gpu_check.py. Each wheel is named without its dependencies
# (--no-deps): this list is their closure for `gmdbench` + mace-torch + fairchem's SchNet.
# A first cut: not yet run on a GPU machine (no device was lent to the session that wrote it).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
           manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
# the versions tested here: those of this checkout's .venv (run `make install` first)
# (faiss, dscribe and tblite are left out: imported only by the distance and by data builds, so
# carry the dataset, built here; the whole set stays under the 64 MiB a call carries)
names=(ase rdkit pydantic pydantic-core annotated-types typing-inspection typer
       shellingham rich markdown-it-py mdurl pyyaml mace-torch matscipy torch-ema opt-einsum
       prettytable configargparse h5py torchmetrics lightning-utilities
       fairchem-core lmdb orjson scikit-learn threadpoolctl joblib
       dask distributed markdown)
pinned=()
for name in "${names[@]}"; do
  version=$(.venv/bin/python -c "from importlib.metadata import version; print(version('$name'))")
  pinned+=("$name==$version")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" -d .whl "${pinned[@]}"
du -sh .whl
