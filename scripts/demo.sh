#!/usr/bin/env bash
# Install what the demo needs (into .venv) and run the end-to-end job.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
export MUJOCO_GL="${MUJOCO_GL:-egl}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2
if .venv/bin/vla demo --help >/dev/null 2>&1; then
  exec .venv/bin/vla demo "$@"
fi
# `vla demo` (fine-tuning issue) is not available yet: run the quickest real thing instead,
# the embedded default policy predicting an action chunk on an observation.
exec .venv/bin/vla predict "$@"
