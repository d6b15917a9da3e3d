"""Serving: FastAPI policy server (HTTP + openpi WebSocket), dynamic batching, robot-side client.

Modules: ``app`` (create_app over any ``vla.types.Policy``; one error -> status table for HTTP and
WebSocket), ``batching`` (DynamicBatcher), ``server`` (uvicorn runners), ``docs`` (offline Swagger
UI), ``toy_policy`` (the numpy stand-in behind ``vla serve --toy``).  The robot-side client
(``RemotePolicy``, chunk brokers, wire codec) is its own light distribution, ``vla_client``, whose
source is ``serve/robot_client/``; ``serve.client`` and ``serve.wire`` re-export it.
See ``serve/README.md`` for the protocol.
"""

import importlib.util as _importlib_util
import sys as _sys
from pathlib import Path as _Path

if _importlib_util.find_spec("vla_client") is None:  # a source tree used without installing it
    _sys.path.append(str(_Path(__file__).resolve().parent / "robot_client"))
