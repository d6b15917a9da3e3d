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


def test_uv_gets_the_package_sources_pip_is_configured_with(tmp_path):
    """bootstrap installs with uv, which ignores pip.conf: scripts/uv_args.py hands it pip's real settings."""
    import os

    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple\n"
                    "extra-index-url = file:///srv/a/simple file:///srv/b/simple\n"
                    "[install]\nconstraint = /srv/pins.txt\ncert = /srv/ca.pem\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=str(conf), PIP_FIND_LINKS="/srv/wheels", PIP_NO_INDEX="1", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path), XDG_CONFIG_DIRS=str(tmp_path))
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "uv_args.py")], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    pairs = set(zip(lines, lines[1:]))
    for pair in [("--index-strategy", "unsafe-best-match"), ("--index-url", "https://mirror.example/simple"),
                 ("--extra-index-url", "file:///srv/a/simple"), ("--extra-index-url", "file:///srv/b/simple"),
                 ("--find-links", "/srv/wheels"), ("--constraint", "/srv/pins.txt")]:
        assert pair in pairs, (pair, lines)
    assert lines.count("--index-url") == 1 and "env:SSL_CERT_FILE=/srv/ca.pem" in lines and "--no-index" in lines
