"""Adaptive batching against a real loopback server and closed-loop HTTP clients (ToyPolicy with a fixed
cost per predict call, like an accelerator): 8 clients get full batches of 8, not two alternating halves,
and a lone client is never held for the batching wait."""

from __future__ import annotations

import threading
import time

import numpy as np

from serve.client import RemotePolicy
from serve.server import running_server
from serve.toy_policy import ToyPolicy, toy_embodiments, toy_observation


def _clients(url: str, n: int, per_client: int, stagger_s: float = 0.0) -> list:
    obs = toy_observation(toy_embodiments()[0], np.random.default_rng(0), size=16)
    barrier, results = threading.Barrier(n), []

    def run(c: int) -> None:
        with RemotePolicy(url, timeout_s=30) as remote:
            barrier.wait()
            if c >= n // 2:
                time.sleep(stagger_s)  # the second half starts late: the first window holds only half
            for i in range(per_client):
                results.append(remote.act(obs, seed=c * 1000 + i))

    threads = [threading.Thread(target=run, args=(c,)) for c in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_eight_closed_loop_clients_fill_batches_of_eight():
    with running_server(ToyPolicy(call_ms=150.0), max_batch=8, max_wait_ms=30.0) as srv:
        _clients(srv.url, 8, 12, stagger_s=0.1)
        hist = dict(srv.app.state.batcher.batch_hist)
    full = hist.get(8, 0) * 8
    assert full >= 0.75 * sum(k * v for k, v in hist.items()), hist  # before: {4: 24}-like alternating halves


def test_lone_client_does_not_wait_for_company():
    with running_server(ToyPolicy(call_ms=5.0), max_batch=8, max_wait_ms=200.0) as srv:
        results = _clients(srv.url, 1, 6)
    assert all(r.timing["batch_size"] == 1 for r in results)
    assert np.median([r.timing["queue_ms"] for r in results[1:]]) < 50.0  # not the 200 ms wait
