"""`vla serve --compile / --quantize int8` against real loopback servers: the compiled expert gives the fp32
actions (oracle: an untouched copy of the policy), int8 moves them by a bounded amount and really swaps the
linear layers, and bad flag combinations are one-line errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from serve.client import RemotePolicy
from serve.server import running_server
from serve.speedups import SpeedupConfig, apply_speedups
from serve.toy_policy import toy_embodiments, toy_observation
from tests.test_serve_cli import _free_port, _vla, _wait_up
from tests.vla_helpers import toy_tiny_policy


@pytest.fixture(scope="module")
def reference():
    return toy_tiny_policy(wake_zero_layers=True)


def _obs(seed: int, prompt: str):
    return {**toy_observation(toy_embodiments()[0], np.random.default_rng(seed), size=48), "prompt": prompt}


@pytest.mark.slow  # inductor compiles the expert once: ~20-40 s on 2 busy cores
def test_compiled_expert_serves_the_fp32_actions(reference):
    fast = copy.deepcopy(reference)
    report = apply_speedups(fast, SpeedupConfig(compile=True))
    assert report["compiled_experts"] == 1 and report["warmup_s"] > 0
    observations = [_obs(1, "lift the cube"), _obs(2, "pick up the red cube and put it down gently")]
    with running_server(fast, max_batch=4, max_wait_ms=0.0) as srv, RemotePolicy(srv.url) as remote:
        for i, obs in enumerate(observations):  # prompts of different lengths: prefix padded to one bucket
            served = remote.act(obs, seed=i).actions
            np.testing.assert_allclose(served, reference.predict([obs], seed=i)[0], atol=1e-5)
        batch = fast.predict(observations, seed=[5, 6])  # batch 2 runs eager: same answer
        for got, want in zip(batch, reference.predict(observations, seed=[5, 6])):
            np.testing.assert_allclose(got, want, atol=1e-5)
    assert float(np.abs(served - reference.predict([obs], seed=99)[0]).max()) > 1e-3  # the seed matters


def test_int8_swaps_linears_and_stays_within_tolerance(reference):
    fast = copy.deepcopy(reference)
    report = apply_speedups(fast, SpeedupConfig(quantize="int8", warmup=False))
    assert report["quantized"] == ["expert x1", "language model"]
    qlinear = torch.ao.nn.quantized.dynamic.Linear
    n_expert = sum(isinstance(m, qlinear) for m in fast.model.expert.modules())
    n_lm = sum(isinstance(m, qlinear) for m in fast.model.backbone.lm.modules())
    assert n_expert == sum(isinstance(m, torch.nn.Linear) for m in reference.model.expert.modules()) > 10
    assert n_lm > 0 and not any(type(m) is torch.nn.Linear for m in fast.model.expert.modules())
    obs = _obs(3, "lift the cube")
    with running_server(fast, max_batch=4, max_wait_ms=0.0) as srv, RemotePolicy(srv.url) as remote:
        served = remote.act(obs, seed=4).actions
    fp32 = reference.predict([obs], seed=4)[0]
    scale = float(np.abs(fp32).max())
    err = float(np.abs(served - fp32).max())
    assert 0 < err <= 0.1 * scale, (err, scale)  # int8 really runs (not exact), and stays close


@pytest.mark.slow  # a served checkpoint process: ~20 s
def test_cli_quantize_serves_the_int8_actions(tmp_path, reference):
    ckpt = reference.save_pretrained(tmp_path / "ckpt")
    port = _free_port()
    proc = _vla("serve", "--checkpoint", str(ckpt), "--port", str(port), "--quantize", "int8")
    try:
        _wait_up(proc, port)
        with RemotePolicy(f"http://127.0.0.1:{port}") as remote:
            obs = _obs(5, "lift the cube")
            served = remote.act(obs, seed=1).actions
        local = copy.deepcopy(reference)
        apply_speedups(local, SpeedupConfig(quantize="int8", warmup=False))
        np.testing.assert_allclose(served, local.predict([obs], seed=1)[0], atol=1e-5)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "speed-ups {'compile': False, 'quantize': 'int8'" in out


def test_cli_bad_speedup_flags_are_one_line(capsys):
    from vla.cli import main as vla_main

    assert vla_main(["serve", "--toy", "--compile"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "vla serve: error: --compile / --quantize apply to a --checkpoint model, not --toy"]
    with pytest.raises(SystemExit) as exit_info:
        vla_main(["serve", "--toy", "--quantize", "int4"])
    assert exit_info.value.code == 2 and "invalid choice: 'int4'" in capsys.readouterr().err


def test_int8_real_time_chunking_backprops_through_an_fp32_expert(reference):
    """RTC guidance takes a vector-Jacobian product through the expert; int8 linears have no autograd kernel
    (torch warns and the gradient is wrong), so those calls must run the fp32 copy: no such warning, and the
    int8 server's RTC chunk stays as close to fp32's as a plain int8 chunk does."""
    import warnings

    fast = copy.deepcopy(reference)
    apply_speedups(fast, SpeedupConfig(quantize="int8", warmup=False))
    obs = _obs(6, "lift the cube")
    prev = reference.predict([obs], seed=0)[0][3:]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = fast.predict([obs], seed=1, prev_actions=[prev], delay_steps=2)[0]
    assert not [w for w in caught if "autograd kernel was not registered" in str(w.message)]
    want = reference.predict([obs], seed=1, prev_actions=[prev], delay_steps=2)[0]
    plain = float(np.abs(fast.predict([obs], seed=1)[0] - reference.predict([obs], seed=1)[0]).max())
    assert float(np.abs(got - want).max()) <= max(2 * plain, 1e-3)


def test_prepacked_linears_serve_the_reference_actions(reference):
    """Prepacked (oneDNN) fp32 linears: the plain eager path's actions (vla.model.reference) up to fp32 rounding,
    batched too, and real-time chunking (gradients through the expert) still matches the unpacked policy."""
    from serve.packed_linear import PackedLinear
    from vla.model.reference import reference_predict

    fast = copy.deepcopy(reference)
    report = apply_speedups(fast, SpeedupConfig(prepack=True, warmup=False))
    assert report["prepacked"][0].startswith("expert x1") and "backbone" in report["prepacked"][1]
    assert not any(type(m) is torch.nn.Linear for m in fast.model.modules())
    assert sum(isinstance(m, PackedLinear) for m in fast.model.expert.modules()) > 10
    observations = [_obs(1, "lift the cube"), _obs(2, "pick up the red cube and put it down gently")]
    with running_server(fast, max_batch=4, max_wait_ms=0.0) as srv, RemotePolicy(srv.url) as remote:
        served = remote.act(observations[0], seed=3).actions
    np.testing.assert_allclose(served, reference_predict(reference, observations[:1], seed=3)[0], atol=1e-5)
    want_batch = reference_predict(reference, observations, seed=[5, 6])
    for got, want in zip(fast.predict(observations, seed=[5, 6]), want_batch):
        np.testing.assert_allclose(got, want, atol=1e-5)
    prev = reference.predict(observations[:1], seed=0)[0][3:]
    got = fast.predict(observations[:1], seed=1, prev_actions=[prev], delay_steps=2)[0]
    np.testing.assert_allclose(got, reference.predict(observations[:1], seed=1, prev_actions=[prev], delay_steps=2)[0],
                               atol=1e-5)


def test_packed_linear_follows_its_weight_and_copies():
    from serve.packed_linear import PackedLinear

    torch.manual_seed(0)
    plain = torch.nn.Linear(24, 40)
    packed = PackedLinear(plain)
    x = torch.randn(3, 5, 24)
    with torch.no_grad():
        torch.testing.assert_close(packed(x), plain(x), atol=1e-5, rtol=1e-5)
        plain.weight.mul_(2.0)  # shared parameter changed in place: repacked
        torch.testing.assert_close(packed(x), plain(x), atol=1e-5, rtol=1e-5)
        twin = copy.deepcopy(packed)
        torch.testing.assert_close(twin(x), plain(x), atol=1e-5, rtol=1e-5)
    y = packed(x.requires_grad_(True))  # gradient calls take F.linear
    (g,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(g, plain.weight.sum(0).expand_as(x))
    assert packed.state_dict().keys() == plain.state_dict().keys()


def test_bf16_packs_every_linear_and_stays_within_tolerance(reference):
    from serve.packed_linear import PackedLinear

    fast = copy.deepcopy(reference)
    report = apply_speedups(fast, SpeedupConfig(quantize="bf16", warmup=False))
    assert report["quantized"][0].startswith("expert x1")
    packed = [m for m in fast.model.modules() if isinstance(m, PackedLinear)]
    assert packed and all(m.dtype == torch.bfloat16 for m in packed)
    obs = _obs(3, "lift the cube")
    fp32 = reference.predict([obs], seed=4)[0]
    err = float(np.abs(fast.predict([obs], seed=4)[0] - fp32).max())
    assert 0 < err <= 0.02 * float(np.abs(fp32).max()), err  # bf16 really runs, and stays close
    with pytest.raises(ValueError, match="bf16"):
        apply_speedups(copy.deepcopy(reference), SpeedupConfig(quantize="bf16", compile=True))
