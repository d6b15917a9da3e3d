"""Print, one per line, the ``uv pip install`` flags that reproduce this machine's pip configuration.

    python scripts/uv_args.py

uv does not read pip.conf or ``PIP_*`` variables; ``scripts/bootstrap.sh`` installs with uv (the
demo's and CI's install drops from ~5 min to ~1 min) and must see the same package sources pip would:
index-url, extra-index-url, no-index, find-links and constraint files from ``pip config list`` (files and
environment alike). ``--index-strategy unsafe-best-match`` keeps pip's semantics of taking the best
version across all indexes, and a configured ``cert`` becomes ``SSL_CERT_FILE`` (printed as ``env:``).
"""

from __future__ import annotations

import shlex
import subprocess
import sys

FLAGS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
         "constraint": "--constraint"}


def pip_config() -> dict[str, list[str]]:
    """This interpreter's ``pip config list``, parsed."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                         check=True).stdout
    return parse_pip_config(out)


def parse_pip_config(text: str) -> dict[str, list[str]]:
    """``key -> values`` from ``pip config list`` lines (``global.x``, ``install.x`` and ``:env:.x`` alike)."""
    conf: dict[str, list[str]] = {}
    for line in text.splitlines():
        name, sep, raw = line.partition("=")
        if not sep:
            continue
        key = name.rsplit(".", 1)[-1]
        values = shlex.split(raw)[0].split() if raw.strip() else []
        for v in values:  # several sources may name the same value
            if v not in conf.setdefault(key, []):
                conf[key].append(v)
    return conf


def uv_args(conf: dict[str, list[str]]) -> list[str]:
    args = ["--index-strategy", "unsafe-best-match"]
    for key, flag in FLAGS.items():
        values = conf.get(key, [])
        if key == "index-url":
            values = values[-1:]  # one primary index; pip lets the last setting win too
        for v in values:
            args += [flag, v]
    if conf.get("no-index", ["false"])[-1].lower() in ("1", "true", "yes", "on"):
        args.append("--no-index")
    if conf.get("cert"):
        args.append(f"env:SSL_CERT_FILE={conf['cert'][-1]}")
    return args


if __name__ == "__main__":
    print("\n".join(uv_args(pip_config())))
