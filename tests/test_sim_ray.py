"""`vla eval/collect --ray`: episodes as Ray tasks on a real local Ray (2 workers, real MuJoCo) give the local
process pool's results episode by episode; a Ray worker killed mid-sweep costs a retry, not an episode; an
unreachable address fails in seconds with one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from sim_eval.evaluate import evaluate  # noqa: E402
from sim_eval.ray_backend import probe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SWEEP = dict(policy="expert", tasks=["Lift"], factors=["lighting@2"], episodes=2, workers=2, max_steps=40,
             progress=False)
FIELDS = ("task", "condition", "seed", "success", "steps", "queries", "renders", "error")


def _by_episode(report: dict) -> dict:
    return {(e["task"], e["condition"], e["seed"]): tuple(e[k] for k in FIELDS) for e in report["episodes"]}


@pytest.fixture(scope="module")
def local_report():
    return evaluate(**SWEEP)  # the default path: spawned worker processes, no Ray


@pytest.fixture(scope="module")
def local_ray():
    from sim_eval.ray_backend import connect

    os.environ.setdefault("PYTHONPATH", str(ROOT))  # the Ray workers import this checkout
    connect("auto", workers=2)
    yield
    ray.shutdown()


def _episode_workers() -> list:
    """This test's Ray worker processes running an episode right now (Ray titles them after the task)."""
    import psutil

    procs = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.cmdline()[:1] and p.cmdline()[0].startswith("ray::ray_episode"):
                procs.append(p)
        except psutil.Error:
            pass
    return procs


@pytest.mark.slow
def test_ray_sweep_equals_local_pool_episode_by_episode(local_report, local_ray):
    rep = evaluate(**SWEEP, ray="auto")
    assert len(rep["episodes"]) == 4 and not rep["errors"]
    assert _by_episode(rep) == _by_episode(local_report)
    assert sorted(_by_episode(rep)) == [("Lift", c, s) for c in ("lighting@2", "nominal") for s in (1000, 1001)]
    assert all(e["retries"] == 0 for e in rep["episodes"]) and rep["retried"] == [] and rep["meta"]["ray"] == "auto"
    assert {e["steps"] for e in rep["episodes"]} != {0}  # episodes really ran


@pytest.mark.slow
def test_killed_ray_worker_episode_is_retried_and_report_complete(local_report, local_ray):
    killed: list[int] = []
    over = threading.Event()

    def killer():  # SIGKILL the first worker seen running an episode (a native crash, seen from outside)
        while not killed and not over.is_set():
            for p in _episode_workers()[:1]:
                os.kill(p.pid, signal.SIGKILL)
                killed.append(p.pid)
            time.sleep(0.02)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        rep = evaluate(**SWEEP, ray="auto")
    finally:
        over.set()
        t.join()
    assert killed, "no Ray worker was seen running an episode"
    assert len(rep["episodes"]) == 4 and not rep["errors"]  # complete: no episode lost
    assert _by_episode(rep) == _by_episode(local_report)  # the retried episode gives the same result
    retried = [e for e in rep["episodes"] if e["retries"]]
    assert [e["retries"] for e in retried] == [1]
    e = retried[0]
    assert rep["retried"] == [f"Lift {e['condition']} seed {e['seed']}: run again 1 time(s) after its Ray worker died"]
    from sim_eval.report import to_markdown

    assert f"- {rep['retried'][0]}" in to_markdown(rep).splitlines()  # report.md lists it too


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_ray_address_is_one_line_error_in_seconds(tmp_path):
    port = _closed_port()
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "vla.cli", "eval", "--ray", f"127.0.0.1:{port}", "--out", str(tmp_path)],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert time.monotonic() - t0 < 20
    assert p.returncode == 1 and p.stderr.strip().splitlines() == [
        f"vla eval: error: --ray 127.0.0.1:{port}: cannot reach a Ray cluster at 127.0.0.1:{port} (Connection "
        "refused); start one with `ray start --head` or use --ray auto for a local Ray"], p.stderr
    assert not any(tmp_path.iterdir())  # nothing ran


def test_port_that_accepts_but_is_no_ray_head_fails_fast():
    with socket.socket() as srv:  # accepts TCP connections (the kernel backlog), never answers
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        port = srv.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(ValueError, match=rf"--ray 127.0.0.1:{port}: no Ray head answers at 127.0.0.1:{port} "
                                             r"\(gRPC (DEADLINE_EXCEEDED|UNAVAILABLE)\)"):
            probe(f"127.0.0.1:{port}", timeout=1.0)
        assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("bad", ["host:port", "ray://:80", "a/b:1", "h:70000"])
def test_malformed_ray_address_names_the_flag(bad):
    with pytest.raises(ValueError, match=r"--ray .*expected 'auto', HOST\[:PORT\]"):
        probe(bad)
