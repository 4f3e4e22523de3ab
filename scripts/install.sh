#!/usr/bin/env bash
# One idempotent set-up path for developers, CI and users: a virtual environment in .venv with
# torch 2.13.0 (CPU) installed first and held by requirements/constraints.txt through every later
# pip call, then gmd-bench itself, then packages that must go in with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GMD_VENV:-.venv}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
constraints=requirements/constraints.txt
stamp="$venv/.install-stamp"

digest=$(cat pyproject.toml requirements/*.txt scripts/install.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] && "$venv/bin/python" -c "import gmdbench" 2>/dev/null; then
  echo "install: $venv is up to date"
  exit 0
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade pip
# 1. torch first, exactly pinned: with torch already present no later requirement can replace it.
#    Which build: TORCH_INDEX_URL if set (PyTorch's index for a CPU or a given CUDA build);
#    otherwise what pip resolves torch==2.13.0 to: on Linux from PyPI that is the CUDA build
#    (what a GPU node needs); this machine's pip configuration resolves it to the CPU build.
torch_index=()
[ -n "${TORCH_INDEX_URL:-}" ] && torch_index=(--index-url "$TORCH_INDEX_URL")
"${pip[@]}" install -q -c "$constraints" "${torch_index[@]}" "torch==2.13.0"
if command -v nvidia-smi >/dev/null && ! "$venv/bin/python" -c \
    "import torch, sys; sys.exit(0 if torch.version.cuda else 1)"; then
  echo "install: warning: this machine has an NVIDIA GPU but the installed torch is a CPU build;"
  echo "         set TORCH_INDEX_URL to PyTorch's index of your CUDA version and run again"
fi
# 2. the package and its declared dependencies, under the same constraints.
"${pip[@]}" install -q -c "$constraints" -e ".[dev]"
# 3. model libraries that require torch (installed now that torch is pinned).
"${pip[@]}" install -q -c "$constraints" -r requirements/models.txt
# 4. torch-scatter and torch-sparse (fairchem's models): PyPI has only sources (about 15 min each
#    to build on 2 cores); ../shared/wheels has them built for torch 2.13.0 / CPython 3.11.
#    GMD_WHEELS may name another folder, or the find-links page of wheels built for your
#    torch/CUDA pair (PyG publishes one per pair); wheels that do not fit fall back to a build.
wheels=${GMD_WHEELS:-../shared/wheels}
if ! "$venv/bin/python" -c "import torch_scatter, torch_sparse" 2>/dev/null; then
  if [ -d "$wheels" ] && [ -f "$wheels/SHA256SUMS" ]; then
    (cd "$wheels" && sha256sum -c --quiet SHA256SUMS)
  fi
  if { [ -d "$wheels" ] || [[ "$wheels" == http* ]]; } && "${pip[@]}" install -q \
      -c "$constraints" --no-deps --only-binary=:all: --no-index --find-links "$wheels" \
      torch-scatter==2.1.2 torch-sparse==0.6.18; then
    echo "install: torch-scatter and torch-sparse from $wheels"
  else
    echo "install: building torch-scatter and torch-sparse from source (about 30 min)"
    "${pip[@]}" install -q -c "$constraints" --no-build-isolation --no-deps \
      torch-scatter==2.1.2 torch-sparse==0.6.18
  fi
fi
# 5. packages whose metadata conflicts (see requirements/no-deps.txt): runtime deps, then --no-deps.
if grep -qv '^\s*\(#\|$\)' requirements/no-deps-runtime.txt; then
  "${pip[@]}" install -q -c "$constraints" -r requirements/no-deps-runtime.txt
fi
if grep -qv '^\s*\(#\|$\)' requirements/no-deps.txt; then
  "${pip[@]}" install -q -c "$constraints" --no-deps -r requirements/no-deps.txt
fi
"$venv/bin/python" - <<'PY'
import torch
assert torch.__version__.startswith("2.13.0"), f"torch was replaced: {torch.__version__}"
import fairchem.core.models.schnet, mace.modules, torch_scatter, torch_sparse, torchani  # noqa
PY
echo "$digest" > "$stamp"
echo "install: done ($venv)"
