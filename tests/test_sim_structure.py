"""sim_eval's module structure: no import circles (lazy imports included), no private names borrowed
across modules, and the task registry (suites, specs) usable without loading a simulator."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports() -> dict[str, set[tuple[str, tuple[str, ...]]]]:
    """sim_eval module -> {(imported sim_eval module, names)} from every import statement, lazy ones too."""
    graph = {}
    for f in sorted((ROOT / "sim_eval").rglob("*.py")):
        mod = ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sim_eval"):
                deps.add((node.module, tuple(a.name for a in node.names)))
            elif isinstance(node, ast.Import):
                deps |= {(a.name, ()) for a in node.names if a.name.startswith("sim_eval")}
        graph[mod] = deps
    return graph


def test_no_import_circles():
    graph = {m: {d for d, _ in deps if d != m} for m, deps in _imports().items()}

    def visit(m, path):
        assert m not in path, " -> ".join(path + [m])
        for d in graph.get(m, ()):
            visit(d, path + [m])

    for m in graph:
        visit(m, [])


def test_no_private_names_across_modules():
    borrowed = [(m, d, n) for m, deps in _imports().items() for d, names in deps for n in names
                if n.startswith("_") and d != m]
    assert borrowed == []


def test_suites_without_loading_a_simulator():
    code = ("import sys; from sim_eval.tasks import SUITES, suite_tasks, task_spec; "
            "assert suite_tasks('mt10') == SUITES['mt10'] and len(SUITES['mt10']) == 10, SUITES; "
            "assert task_spec('reach-v3').name == 'metaworld_sawyer' and task_spec('Door').action_dim == 7; "
            "import sim_eval.metaworld_env; "
            "print(sorted(m for m in ('robosuite', 'metaworld', 'sim_eval.envs') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == "[]"  # metaworld_env needs neither the robosuite envs module nor a simulator at import


def test_robosuite_hints_filtered_real_warnings_kept():
    code = ("from sim_eval.logs import import_robosuite; import_robosuite(); "
            "from robosuite.utils.log_utils import ROBOSUITE_DEFAULT_LOGGER as log; "
            "log.warning('Joint limit reached in joint 3'); log.info('Loading controller configuration from: x')")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    robosuite_lines = [line for line in p.stderr.splitlines() if line.startswith("[robosuite")]
    assert robosuite_lines == ["[robosuite WARNING] Joint limit reached in joint 3 (<string>:1)"], p.stderr
