"""Robot-side client of a VLA policy server (numpy + msgpack + httpx; no torch, no web framework).

* ``RemotePolicy`` (``vla_client.client``): ``POST /v1/act`` over HTTP, msgpack or JSON, retries.
* ``ChunkBroker`` / ``BlendingChunkBroker`` (``vla_client.chunking``) and ``RealTimeChunkBroker``
  (``vla_client.realtime``: naive / blend / real-time chunking under a simulated or measured delay):
  action-chunk execution, the one implementation that robot loops and sim-eval rollouts share.
* ``vla_client.wire``: the msgpack-numpy codec (openpi-compatible) and the observation mapping,
  including openpi's flat keys (``to_openpi`` / ``to_observation``).

Install on a robot computer with ``pip install serve/robot_client`` (from a checkout of the project);
the full project ships the same package and re-exports it as ``serve.client`` / ``serve.wire``.
"""

from .chunking import BlendingChunkBroker, ChunkBroker
from .client import ActResult, RemotePolicy, RemotePolicyError
from .realtime import RealTimeChunkBroker
from .types import EmbodimentSpec, InvalidObservationError, PolicyMetadata

__all__ = [
    "ActResult",
    "BlendingChunkBroker",
    "ChunkBroker",
    "EmbodimentSpec",
    "InvalidObservationError",
    "PolicyMetadata",
    "RealTimeChunkBroker",
    "RemotePolicy",
    "RemotePolicyError",
]
