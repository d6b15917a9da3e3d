"""Running the app under uvicorn: blocking (the CLI) or in a background thread (tests, benchmarks)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from serve.app import DEFAULT_MAX_BODY, create_app
from vla.types import Policy


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_batch: int = 8
    max_wait_ms: float = 10.0
    adaptive_batching: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY
    graceful_timeout_s: float = 10.0
    log_level: str = "info"


def _uvicorn_config(policy: Policy, cfg: ServeConfig):
    import uvicorn

    app = create_app(
        policy,
        api_key=cfg.api_key,
        max_batch=cfg.max_batch,
        max_wait_ms=cfg.max_wait_ms,
        adaptive_batching=cfg.adaptive_batching,
        max_body_bytes=cfg.max_body_bytes,
    )
    return uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level=cfg.log_level,
        ws="websockets-sansio"
        if "websockets-sansio" in uvicorn.config.WS_PROTOCOLS
        else "websockets",  # sansio: uvicorn>=0.35
        ws_max_size=cfg.max_body_bytes,
        ws_ping_interval=None,  # robots may block between frames; openpi's client does not ping either
        timeout_graceful_shutdown=cfg.graceful_timeout_s,
        access_log=False,
    )


def serve_forever(policy: Policy, cfg: ServeConfig) -> None:
    """Blocking; SIGINT/SIGTERM stop taking connections, finish in-flight requests, then return."""
    import signal

    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # graceful stop, then a normal return (uvicorn would re-raise the signal)
            old = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

    _Server(_uvicorn_config(policy, cfg)).run()


@dataclass(frozen=True)
class RunningServer:
    host: str
    port: int
    server: object  # the uvicorn.Server (``should_exit = True`` stops it)
    thread: threading.Thread
    app: object  # the FastAPI app (``app.state.batcher`` has the batching counters)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def running_server(policy: Policy, cfg: ServeConfig | None = None, **overrides) -> Iterator[RunningServer]:
    """Serve ``policy`` on loopback in a background thread (port 0 = a free port); stop on exit."""
    import dataclasses

    import uvicorn

    cfg = dataclasses.replace(cfg or ServeConfig(port=0, log_level="warning"), **overrides)
    config = _uvicorn_config(policy, cfg)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningServer(host=cfg.host, port=port, server=server, thread=thread, app=config.app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
