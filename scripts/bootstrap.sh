#!/usr/bin/env bash
# Create/refresh .venv with everything the stack needs. Idempotent and fast when nothing changed.
# Fails loudly (non-zero, naming the package) when any install step fails or any declared
# dependency does not import afterwards.
#   VLA_PYTHON       python to build the venv with (default: python3, must be >= 3.11)
#   VLA_TORCH_SPEC   torch requirements installed first (default: "torch==2.14.1 torchvision==0.29.1",
#                    the standard builds, which run on CPU too; set VLA_TORCH_SPEC=skip inside a venv with
#                    your own CUDA torch + matching torchvision)
#   VLA_INSTALLER    uv (default; pip-installed into .venv, reads pip's index settings via scripts/uv_args.py)
#                    or pip
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${VLA_PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -c 'import sys; assert sys.version_info >= (3, 11), f"Python >= 3.11 needed, found {sys.version}"'
  "$py" -m venv .venv
fi
stamp=".venv/.vla-installed"
want="$(cat pyproject.toml scripts/bootstrap.sh scripts/check_deps.py scripts/uv_args.py | sha256sum | cut -c1-16)"
uv_flags=()
find_uv() {  # uv installs the ~5 GB of wheels in ~1 min where pip takes ~5; pip stays the fallback
  [ "${VLA_INSTALLER:-uv}" = "pip" ] && return 1
  [ -x .venv/bin/uv ] || .venv/bin/python -m pip install -q "uv==0.13.9" >/dev/null 2>&1 \
    || { echo "[bootstrap] uv could not be installed: installing with pip (slower)" >&2; return 1; }
  local line flags
  flags="$(.venv/bin/python scripts/uv_args.py)" \
    || { echo "[bootstrap] pip's settings could not be read for uv: installing with pip (slower)" >&2; return 1; }
  while IFS= read -r line; do
    case "$line" in
      env:*) export "${line#env:}" ;;
      *) uv_flags+=("$line") ;;
    esac
  done <<< "$flags"
}
export UV_CACHE_DIR="${UV_CACHE_DIR:-$root/.venv/.uv-cache}"  # beside the venv: uv hardlinks, one copy on disk
run_installer() {  # the installer's own exit status decides; pip's "is ignored" notices are filtered out
  local log; log="$(mktemp)"
  local rc=0
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then grep -v "is ignored" "$log" || true; else grep -v "is ignored" "$log" >&2 || true; fi
  rm -f "$log"
  return "$rc"
}
install_pkgs() {  # uv first; when uv fails (full disk, odd index), its cache goes and pip retries, said so
  local pip_cmd=(.venv/bin/python -m pip install -q "$@")
  if [ "$use_uv" = 1 ]; then
    local uv_cmd=(.venv/bin/uv pip install -q --python .venv/bin/python "${uv_flags[@]}" "$@")
    run_installer "${uv_cmd[@]}" && return 0
    echo "[bootstrap] uv failed (above): clearing its cache and retrying with pip: ${pip_cmd[*]}" >&2
    rm -rf "$UV_CACHE_DIR"
    use_uv=0
  fi
  run_installer "${pip_cmd[@]}" && return 0
  echo "[bootstrap] FAILED: ${pip_cmd[*]} ($(free_gb) GB free in $root/.venv)" >&2
  exit 1
}
free_gb() { df -Pk "$root/.venv" | awk 'NR==2 {printf "%.1f", $4 / 1048576}'; }
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[bootstrap] installing dependencies into .venv (first run takes a few minutes)"
  rm -f "$stamp"
  use_uv=0
  if find_uv; then use_uv=1; fi
  awk -v f="$(free_gb)" 'BEGIN { exit !(f < 7) }' \
    && echo "[bootstrap] warning: $(free_gb) GB free in $root/.venv; torch + torchvision need ~6 GB" >&2
  spec="${VLA_TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
  if [ "$spec" != "skip" ]; then
    # shellcheck disable=SC2086  # the spec is a list of requirements; pip is a no-op when they are met
    install_pkgs $spec
  fi
  install_pkgs -e ".[all,dev]"
  .venv/bin/python -c 'import numpy; assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}: need <2"' \
    || { echo "[bootstrap] FAILED: numpy must stay < 2" >&2; exit 1; }
  .venv/bin/python scripts/check_deps.py --extras all,dev --import \
    || { echo "[bootstrap] FAILED: declared dependencies missing or broken (see above)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
