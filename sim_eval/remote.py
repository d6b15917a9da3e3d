"""Evaluate a policy served over the openpi WebSocket protocol (``openpi_client``).

Observations go out with openpi's flat LIBERO-style keys (``observation/image``,
``observation/wrist_image``, ``observation/state``, ``prompt``; the mapping's one home is
``vla_client.wire.to_openpi``), which real openpi servers and ``vla serve`` both accept; the
reply's ``actions`` [H, A] is the chunk. HTTP servers (``vla serve``) are reached through
``serve.client.RemotePolicy`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlparse

import numpy as np

from serve import wire
from vla.types import ActionChunk, EmbodimentSpec, Observation, PolicyMetadata, per_observation_seeds


class OpenPIPolicy:
    """``vla.types.Policy`` over an openpi WebSocket server. ``url``: ``ws://host:port``."""

    def __init__(self, url: str, spec: EmbodimentSpec, api_key: str | None = None):
        from openpi_client.websocket_client_policy import WebsocketClientPolicy

        u = urlparse(url if "://" in url else f"ws://{url}")
        if not u.hostname:
            raise ValueError(f"openpi url {url!r}: expected ws://host:port")
        self.spec = spec
        self._client = WebsocketClientPolicy(host=u.hostname, port=u.port, api_key=api_key)
        server_meta = self._client.get_server_metadata() or {}
        self._meta = PolicyMetadata(
            embodiments={spec.name: spec},
            default_embodiment=spec.name,
            action_horizon=int(server_meta.get("action_horizon", 0) or 0),
            model=f"openpi:{url}",
            extra={"server": _plain(server_meta)},
        )

    @property
    def metadata(self) -> PolicyMetadata:
        return self._meta

    def _payload(self, obs: Observation, seed, prev=None, delay=None) -> dict:
        return wire.to_openpi(obs, self.spec.cameras, seed=None if seed is None else int(seed),
                              prev_actions=None if prev is None else np.asarray(prev, np.float32),
                              delay_steps=None if delay is None else int(delay))

    def predict(
        self, observations: list[Observation], *, embodiment: str | None = None,
        seed: int | Sequence[int] | None = None, prev_actions: Sequence[np.ndarray | None] | None = None,
        delay_steps: int | Sequence[int] | None = None,
    ) -> list[ActionChunk]:
        """``prev_actions`` / ``delay_steps`` (real-time chunking) go out as extra keys of the frame, which
        ``vla serve`` understands; plain openpi servers do not know them."""
        seeds = per_observation_seeds(seed, len(observations))
        prevs = list(prev_actions) if prev_actions is not None else [None] * len(observations)
        delays = delay_steps if isinstance(delay_steps, (list, tuple)) else [delay_steps] * len(observations)
        out = []
        for obs, s, p, d in zip(observations, seeds, prevs, delays):
            reply = self._client.infer(self._payload(obs, s, p, None if p is None else d))
            actions = np.asarray(reply["actions"], np.float32)
            if actions.ndim == 1:
                actions = actions[None]
            out.append(actions[:, : self.spec.action_dim])
        return out

    def reset(self) -> None:
        self._client.reset()


def _plain(d):
    if isinstance(d, dict):
        return {str(k): _plain(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_plain(v) for v in d]
    if isinstance(d, np.ndarray):
        return d.tolist()
    return d if isinstance(d, (str, int, float, bool, type(None))) else str(d)
