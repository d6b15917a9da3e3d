#!/usr/bin/env bash
# Create/refresh .venv with everything the stack needs. Idempotent and fast when nothing changed.
#   VLA_PYTHON       python to build the venv with (default: python3, must be >= 3.11)
#   VLA_TORCH_SPEC   torch requirement installed first (default: torch==2.13.0, the CPU wheel on
#                    CPU-only machines; set e.g. VLA_TORCH_SPEC=skip inside a venv with your own CUDA torch)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${VLA_PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -c 'import sys; assert sys.version_info >= (3, 11), f"Python >= 3.11 needed, found {sys.version}"'
  "$py" -m venv .venv
fi
stamp=".venv/.vla-installed"
want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[bootstrap] installing dependencies into .venv (first run takes a few minutes)"
  spec="${VLA_TORCH_SPEC:-torch==2.13.0}"
  if [ "$spec" != "skip" ] && ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    .venv/bin/python -m pip install -q "$spec" 2>&1 | grep -v "is ignored" || true
  fi
  .venv/bin/python -m pip install -q -e ".[all,dev]" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c 'import torch, numpy, vla; assert numpy.__version__.startswith("1."), numpy.__version__' \
    || { echo "[bootstrap] install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
