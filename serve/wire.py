"""The wire codec and observation mapping; lives in the robot-side package ``vla_client.wire``.

Re-exported here so server code and existing imports (``from serve import wire``) keep working.
"""

from vla_client.wire import (  # noqa: F401
    MSGPACK,
    ParsedRequest,
    WireError,
    observation_to_json,
    observation_to_msgpack,
    openpi_cameras,
    packb,
    to_observation,
    to_openpi,
    unpackb,
)
