"""Serving: FastAPI policy server (HTTP + openpi WebSocket), dynamic batching, robot-side client.

Modules: ``wire`` (msgpack-numpy / JSON encodings, observation mapping; numpy + msgpack only),
``batching`` (DynamicBatcher), ``app`` (create_app over any ``vla.types.Policy``), ``server``
(uvicorn runners), ``client`` (RemotePolicy, ChunkBroker, BlendingChunkBroker; no web framework),
``testing`` (a numpy stand-in Policy).  See ``serve/README.md`` for the protocol.
"""
