"""A checkpoint with a per-embodiment LoRA adapter, served: requests for the base embodiment and the
adapter's embodiment arriving together share one batching window, each answer equals the local
``predict`` of the same checkpoint, and the adapter really changes its embodiment's actions."""

from __future__ import annotations

import concurrent.futures
import threading

import numpy as np
import pytest
import torch

from serve.client import RemotePolicy
from serve.server import running_server
from serve.toy_policy import toy_embodiments, toy_observation
from tests.vla_helpers import toy_tiny_policy
from vla.adapters import AdapterSet
from vla.policy import VLAPolicy

ATOL = 1e-4


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """(base dir, dir with a LoRA adapter for toy_joint): same base weights, adapter weights non-zero."""
    root = tmp_path_factory.mktemp("lora")
    policy = toy_tiny_policy()
    policy.save_pretrained(root / "base")
    policy.adapters = AdapterSet(policy.model)
    policy.adapters.add("toy_joint", rank=4, alpha=8)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # a trained adapter, in effect: LoRA B and the expert copy move off the base
        lora_b = [p for n, p in policy.model.named_parameters() if "lora_B" in n and "toy_joint" in n]
        assert lora_b, "no LoRA parameters were injected"
        for p in lora_b:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        for p in policy.adapters.full["toy_joint"]["expert"].parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    policy.save_pretrained(root / "lora")
    assert (root / "lora" / "adapters" / "toy_joint" / "adapter_model.safetensors").is_file()
    return root / "base", root / "lora"


def test_base_and_adapter_requests_share_a_window_and_match_local_predict(checkpoints):
    base_dir, lora_dir = checkpoints
    arm, joint = toy_embodiments()
    obs = {
        "toy_arm": toy_observation(arm, np.random.default_rng(0), size=40),
        "toy_joint": toy_observation(joint, np.random.default_rng(1), size=40, prompt=""),
    }
    seeds = {"toy_arm": 3, "toy_joint": 4}
    served = VLAPolicy.from_pretrained(lora_dir)
    with running_server(served, max_batch=8, max_wait_ms=500.0, adaptive_batching=False) as srv:
        batcher = srv.app.state.batcher
        windows, batches = batcher.windows_run, batcher.batches_run
        barrier = threading.Barrier(2)

        def call(emb):
            with RemotePolicy(srv.url) as remote:
                barrier.wait()
                return remote.act(obs[emb], embodiment=emb, seed=seeds[emb])

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            res = dict(zip(seeds, pool.map(call, seeds)))
        assert batcher.windows_run - windows == 1 and batcher.batches_run - batches == 2  # one window, 2 predicts
    for emb, r in res.items():
        assert r.timing["window_size"] == 2 and r.timing["batch_size"] == 1, (emb, r.timing)
    local = VLAPolicy.from_pretrained(lora_dir)
    base = VLAPolicy.from_pretrained(base_dir)
    for emb, r in res.items():
        np.testing.assert_allclose(r.actions, local.predict([obs[emb]], embodiment=emb, seed=seeds[emb])[0], atol=ATOL)
    # the base embodiment is untouched by the adapter; the adapter's embodiment is not the base's answer
    base_arm = base.predict([obs["toy_arm"]], embodiment="toy_arm", seed=3)[0]
    np.testing.assert_allclose(res["toy_arm"].actions, base_arm, atol=ATOL)
    base_joint = base.predict([obs["toy_joint"]], embodiment="toy_joint", seed=4)[0]
    assert np.abs(res["toy_joint"].actions - base_joint).max() > 1e-2
