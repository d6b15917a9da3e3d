#!/usr/bin/env bash
# Install what the demo needs (into .venv) and run the end-to-end job: collect Lift demos,
# fine-tune the embedded default policy, evaluate it under perturbations, write the report.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
export MUJOCO_GL="${MUJOCO_GL:-egl}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/vla demo "$@"
