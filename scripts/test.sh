#!/usr/bin/env bash
# Install what the tests need (into .venv), lint, and run the whole CPU test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
.venv/bin/python -m ruff check --quiet . || { echo "[test] ruff found problems (above)" >&2; exit 1; }
export MUJOCO_GL="${MUJOCO_GL:-egl}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -q "$@"
