"""The robot-side client; lives in the light package ``vla_client`` (``serve/robot_client``).

Re-exported here so ``from serve.client import RemotePolicy, ChunkBroker, ...`` keeps working.
"""

from vla_client.chunking import BlendingChunkBroker, ChunkBroker, check_chunk, execute_horizon_of  # noqa: F401
from vla_client.client import ActResult, RemotePolicy, RemotePolicyError, check_url  # noqa: F401
from vla_client.realtime import RealTimeChunkBroker  # noqa: F401
