"""Evaluate a served policy: HTTP (serve.client.RemotePolicy) and the openpi WebSocket protocol."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def server():
    import torch

    from serve.server import running_server
    from sim_eval.envs import robosuite_panda_spec
    from vla.config import tiny_config
    from vla.policy import VLAPolicy

    torch.manual_seed(0)
    policy = VLAPolicy.create(tiny_config(), embodiments=[robosuite_panda_spec(48)])
    with running_server(policy) as srv:
        yield srv


@pytest.mark.parametrize("scheme", ["http", "ws"])
def test_eval_remote_policy(server, scheme, tmp_path):
    from sim_eval.evaluate import evaluate

    url = f"{scheme}://{server.host}:{server.port}"
    rep = evaluate(url, ["Lift"], [], episodes=1, workers=1, out_dir=None, image_size=48, max_steps=16, progress=False)
    assert not rep["errors"], rep["errors"]
    ep = rep["episodes"][0]
    assert ep["steps"] == 16 and ep["queries"] == 2 and ep["renders"] == 4  # chunk of 8 executed, then re-query
