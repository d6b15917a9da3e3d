"""The dependency check that makes bootstrap and the suite fail (not skip) when a declared package is missing."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_check(tmp_path: Path, deps: list[str], extra: list[str], *flags: str) -> subprocess.CompletedProcess:
    toml = tmp_path / "pyproject.toml"

    def quoted(xs: list[str]) -> str:
        return ", ".join(f'"{x}"' for x in xs)

    toml.write_text(f'[project]\nname = "demo-proj"\ndependencies = [{quoted(deps)}]\n'
                    f'[project.optional-dependencies]\nsim = [{quoted(extra)}]\nall = ["demo-proj[sim]"]\n')
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "check_deps.py"), "--pyproject", str(toml),
                           "--extras", "all", *flags], capture_output=True, text=True, timeout=120)


def test_missing_extra_package_is_named(tmp_path):
    res = run_check(tmp_path, ["numpy"], ["surely-not-installed-vla-pkg>=1"])
    assert res.returncode == 1
    assert "surely-not-installed-vla-pkg: not installed" in res.stderr


def test_version_outside_declared_range_is_named(tmp_path):
    res = run_check(tmp_path, ["numpy>=99"], [])
    assert res.returncode == 1 and "numpy: version" in res.stderr and "numpy>=99" in res.stderr


def test_installed_and_importable_passes(tmp_path):
    res = run_check(tmp_path, ["numpy<2"], ["pyyaml"], "--import")
    assert res.returncode == 0, res.stderr


def test_project_environment_is_complete():
    """The real pyproject: everything it declares (all + dev extras) is installed here."""
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_deps.py")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
