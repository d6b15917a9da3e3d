"""Episodes as Ray tasks: ``vla eval/collect --ray auto|ADDRESS`` (the ``ray`` extra; imported lazily).

Each job (:class:`sim_eval.rollout.Job`) runs as one Ray task in a Ray worker process, through the same
worker code as the local pool (:func:`sim_eval.rollout.ray_episode`: envs and the policy built once per
worker and reused), so an episode gives the same result as on the local path (episodes are seeded).
This module knows no sim_eval types: ``sim_eval.rollout`` hands it the task and the errored-result maker.
A task whose worker dies (a native crash, a lost node, an OOM kill) is resubmitted by the driver up to
``max_retries`` times and lands on whichever worker is free; its result carries ``retries``. Episodes
that still cannot run come back as errored results, so progress and partial results are kept.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator

INSTALL_HINT = "pip install vla-stack[ray]"
DEFAULT_GCS_PORT = 6379  # `ray start --head` default
DEFAULT_CLIENT_PORT = 10001  # ray://host:port (Ray Client) default
LOCAL_OBJECT_STORE = 200 * 1024**2  # a small local Ray: episodes return small results (frames at most)
WORKER_ENV = {"MUJOCO_GL": "egl", "USE_TF": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}  # render workers never load TF


def import_ray():
    """``ray``, or a one-line ``ValueError`` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ValueError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def parse_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of ``host[:port]`` or ``ray://host[:port]``; ``ValueError`` naming the flag if malformed."""
    text = address.removeprefix("ray://")
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    default = DEFAULT_CLIENT_PORT if address.startswith("ray://") else DEFAULT_GCS_PORT
    try:
        port_n = int(port) if port else default
    except ValueError:
        port_n = -1
    if not host or "/" in host or not 0 < port_n < 65536:
        raise ValueError(f"--ray {address!r}: expected 'auto', HOST[:PORT] (the head's GCS, default port "
                         f"{DEFAULT_GCS_PORT}) or ray://HOST[:PORT]")
    return host.strip("[]"), port_n


def probe(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds (one-line ``ValueError``) unless Ray answers at ``address``, before ``ray.init`` could
    wait on it for a minute: a TCP connect, then (for a GCS address) one ``GetClusterId`` gRPC call, which a
    port that accepts connections but is no Ray head (another server, a proxy) fails."""
    host, port = parse_address(address)
    hint = "start one with `ray start --head` or use --ray auto for a local Ray"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise ValueError(f"--ray {address}: cannot reach a Ray cluster at {host}:{port} ({e.strerror or e}); "
                         f"{hint}") from None
    if address.startswith("ray://") or os.environ.get("RAY_USE_TLS", "0") not in ("0", ""):
        return  # Ray Client or a TLS cluster: ray.init checks the rest
    code = _gcs_status(host, port, timeout)
    if code is not None:
        raise ValueError(f"--ray {address}: no Ray head answers at {host}:{port} (gRPC {code}); {hint}")


def _gcs_status(host: str, port: int, timeout: float):
    """``None`` if a Ray GCS answers ``GetClusterId`` at host:port (an auth refusal counts: it is one), else the
    gRPC status code name."""
    import grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        call = channel.unary_unary("/ray.rpc.NodeInfoGcsService/GetClusterId",
                                   request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            call(b"", timeout=timeout)
        except grpc.RpcError as e:
            code = e.code()
            return None if code == grpc.StatusCode.UNAUTHENTICATED else code.name
    return None


def check_ray(address: str) -> None:
    """Ray is installed and (unless ``auto``) something listens at ``address``: one-line ``ValueError`` if not."""
    import_ray()
    if address != "auto":
        probe(address)


def connect(address: str, workers: int = 2) -> None:
    """Join the Ray cluster at ``address``, or start a small local Ray (``auto``: ``workers`` CPUs, no dashboard,
    a 200 MB object store). Reuses a connection this process already holds."""
    ray = import_ray()
    if ray.is_initialized():
        return
    env_vars = dict(WORKER_ENV)
    if address == "auto":
        if os.environ.get("PYTHONPATH"):  # local workers import this checkout, as the driver does
            env_vars["PYTHONPATH"] = os.environ["PYTHONPATH"]
        ray.init(address="local", num_cpus=max(1, workers), include_dashboard=False,
                 object_store_memory=LOCAL_OBJECT_STORE, log_to_driver=False, runtime_env={"env_vars": env_vars},
                 configure_logging=False)
        return
    probe(address)
    host, port = parse_address(address)
    target = f"ray://{host}:{port}" if address.startswith("ray://") else f"{host}:{port}"
    try:
        ray.init(address=target, log_to_driver=False, runtime_env={"env_vars": env_vars}, configure_logging=False)
    except (ConnectionError, TimeoutError, RuntimeError) as e:
        raise ValueError(f"--ray {address}: could not join the Ray cluster: {str(e).splitlines()[0]}") from None


def ray_results(jobs: list, setup: tuple, address: str, episode: Callable, failed: Callable, workers: int = 2,
                ordered: bool = False, max_retries: int = 2) -> Iterator:
    """Results of ``jobs`` run as Ray tasks ``episode(run_id, setup, job)`` (in completion order, or in job order
    with ``ordered``). A job whose worker died is resubmitted up to ``max_retries`` times (its result's ``retries``
    says how often); after that, or when the task itself fails, ``failed(job, note, retries)`` stands in for it.

    At most twice the cluster's CPUs are in flight (an early close, as collection does, wastes little);
    closing the generator cancels the tasks left."""
    ray = import_ray()
    connect(address, workers)
    task = ray.remote(num_cpus=1, max_retries=0)(episode)
    setup = ray.put(setup)
    run = uuid.uuid4().hex
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", workers)))
    todo = list(enumerate(jobs))[::-1]
    pending: dict = {}  # ref -> (index, job, retries)
    done: dict = {}  # index -> result waiting for its turn (ordered)
    next_out = 0
    try:
        while todo or pending:
            while todo and len(pending) < window:
                i, job = todo.pop()
                pending[task.remote(run, setup, job)] = (i, job, 0)
            ready, _ = ray.wait(list(pending), num_returns=1)
            i, job, retries = pending.pop(ready[0])
            res = _result(ray, ready[0], job, retries, max_retries, failed)
            if res is None:  # the worker died: run the episode again on whichever worker is free
                pending[task.remote(run, setup, job)] = (i, job, retries + 1)
                continue
            if not ordered:
                yield res
                continue
            done[i] = res
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def _result(ray, ref, job, retries: int, max_retries: int, failed: Callable):
    """The episode's result (``retries`` set), ``None`` to retry it, or an errored result once retries ran out."""
    try:
        res = ray.get(ref)
    except ray.exceptions.RayTaskError as e:  # raised in the task outside the episode's own net (e.g. unpickling)
        note = f"Ray task failed: {str(e).splitlines()[0]}"
    except ray.exceptions.RayError as e:  # the worker or its node died
        if retries < max_retries:
            return None
        note = (f"a Ray worker died {retries + 1} time(s) running this episode ({type(e).__name__}); "
                "this episode did not run")
    else:
        res.retries = retries
        return res
    return failed(job, note, retries)
