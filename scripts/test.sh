#!/usr/bin/env bash
# Install what the tests need (into .venv), lint, and run the whole CPU test suite.
# With no arguments the suite runs as two pytest processes side by side: the simulation tests
# (tests/test_sim_*.py, MuJoCo rendering in-process) and everything else (which loads TensorFlow for
# RLDS; TF and Mesa's llvmpipe must not share a process, see sim_eval/gl.py). Tests that only drive
# subprocesses (SIDE_TESTS) run in the simulation process too, so the two take about as long. Arguments run one
# plain pytest with them (e.g. scripts/test.sh tests/test_serve_app.py -k metadata).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
.venv/bin/python -m ruff check --quiet . || { echo "[test] ruff found problems (above)" >&2; exit 1; }
export MUJOCO_GL="${MUJOCO_GL:-egl}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
SIDE_TESTS=(tests/test_finetune_demo.py tests/test_gpu_check.py)
sim_log="$(mktemp)"
trap 'kill "$sim_pid" 2>/dev/null || true; rm -f "$sim_log"' EXIT
echo "[test] simulation tests run alongside (output after the main part)"
OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q -p no:cacheprovider --durations=12 tests/test_sim_*.py "${SIDE_TESTS[@]}" >"$sim_log" 2>&1 &
sim_pid=$!
main_rc=0
.venv/bin/python -m pytest -q --durations=12 --ignore-glob='tests/test_sim_*' "${SIDE_TESTS[@]/#/--ignore=}" \
  || main_rc=$?
sim_rc=0
wait "$sim_pid" || sim_rc=$?
echo "[test] ===== simulation tests (tests/test_sim_*.py ${SIDE_TESTS[*]}) ====="
cat "$sim_log"
if [ "$main_rc" != 0 ] || [ "$sim_rc" != 0 ]; then
  echo "[test] FAILED: main part exit $main_rc, simulation part exit $sim_rc" >&2
  exit 1
fi
echo "[test] all passed (main part and simulation part)"
