"""Latency-aware execution: the RealTimeChunkBroker's schedule against a written-out timeline, and real MuJoCo
rollouts (robosuite Lift + a tiny VLAPolicy) whose executed actions are counted from outside the broker."""

from __future__ import annotations

import numpy as np
import pytest

from serve.client import RealTimeChunkBroker
from serve.toy_policy import toy_embodiments
from sim_eval.evaluate import resolve_delay
from sim_eval.rollout import (
    Job,
    PolicySource,
    RolloutConfig,
    eef_jerk,
    run_episode,
    switch_discontinuity,
    within_chunk_change,
)
from vla.types import PolicyMetadata

H, E = 8, 4  # model horizon, executed actions per chunk


class TickPolicy:
    """Row i of the chunk queried at tick tq is [tq, i, 0...] + 1000 * (query number): who made each action is
    readable from the action itself.  Records each call's prefix."""

    def __init__(self):
        spec = toy_embodiments()[0]
        self.metadata = PolicyMetadata({spec.name: spec}, spec.name, H)
        self.calls: list[dict] = []

    def reset(self):
        pass

    def predict(self, observations, *, embodiment=None, seed=None, prev_actions=None, delay_steps=None):
        tq = observations[0]["tick"]
        chunk = np.zeros((H, 7), np.float32)
        chunk[:, 0], chunk[:, 1], chunk[:, 2] = tq, np.arange(H), len(self.calls)
        self.calls.append({"tick": tq, "prev": None if prev_actions is None else prev_actions[0],
                           "delay": delay_steps, "chunk": chunk.copy()})
        if prev_actions is not None:
            chunk[:delay_steps] = prev_actions[0][:delay_steps]
        return [chunk]


def run_broker(mode: str, d: int, ticks: int = 30):
    policy = TickPolicy()
    # blend ramps over one row only, so the rows executed before a switch are still the old chunk's own
    broker = RealTimeChunkBroker(policy, mode=mode, delay_steps=d, execute_horizon=E, blend_steps=1)
    actions = []
    for t in range(ticks):
        needs = broker.needs_observation
        n_calls = len(policy.calls)
        actions.append(broker.act({"tick": t}))
        assert needs == (len(policy.calls) > n_calls), f"needs_observation wrong at tick {t}"
    return policy, broker, np.array(actions)


@pytest.mark.parametrize("mode", ["naive", "blend", "rtc"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_switch_after_exactly_d_old_actions(mode, d):
    policy, broker, actions = run_broker(mode, d)
    queries = [c["tick"] for c in policy.calls]
    assert queries[:3] == [0, E - d, 2 * E - d]  # first chunk synchronous, then every E ticks, d early
    for k, (tq, ts) in enumerate(broker.switches[1:], start=1):
        assert ts - tq == d
        old = policy.calls[k - 1]
        # ticks tq..ts-1: the old chunk's rows (made by query k-1), exactly d of them
        made_by = actions[tq:ts + 1, 2]
        assert (made_by[:d] == k - 1).sum() == d
        new_row = policy.calls[k]["chunk"][d]
        if mode == "naive":
            np.testing.assert_array_equal(actions[ts], new_row)
        elif mode == "rtc":
            np.testing.assert_array_equal(actions[ts], new_row)
            prev = policy.calls[k]["prev"]  # the old plan from the query tick on, and the delay
            np.testing.assert_array_equal(prev, old["chunk"][tq - old["tick"]:])
            assert policy.calls[k]["delay"] == d
        else:  # blend over 1 row: the first new row goes half way from the old plan
            old_row = old["chunk"][ts - old["tick"]]
            np.testing.assert_allclose(actions[ts], (old_row + new_row) / 2, rtol=1e-6)
            np.testing.assert_array_equal(actions[ts + 1], policy.calls[k]["chunk"][d + 1])


def test_delay_zero_equals_the_synchronous_broker():
    from serve.client import ChunkBroker

    policy, broker, actions = run_broker("naive", 0)
    sync = ChunkBroker(TickPolicy(), execute_horizon=E)
    np.testing.assert_array_equal(actions, np.array([sync.act({"tick": t}) for t in range(30)]))


def test_measured_latency_sets_the_delay():
    import time

    class Slow(TickPolicy):
        def predict(self, observations, **kw):
            time.sleep(0.12)
            return super().predict(observations, **kw)

    broker = RealTimeChunkBroker(Slow(), mode="rtc", execute_horizon=E, control_hz=20.0)
    broker.act({"tick": 0})  # synchronous first query: 120 ms at 20 Hz = 2.4 ticks -> d = 3
    assert broker.delay == 3
    broker.close()


def test_metric_helpers_against_hand_values():
    acts = [np.array([0.0, 0, 0, 0, 0, 0, 1]), np.array([0.0, 0, 0, 0, 0, 0, -1]), np.array([3.0, 4, 0, 0, 0, 0, 1])]
    assert switch_discontinuity(acts, [(0, 0), (0, 2)], gripper_dims=(6,)) == 5.0
    assert within_chunk_change(acts, [(0, 0), (0, 2)], gripper_dims=(6,)) == 0.0  # tick 1: arm unchanged
    p = [np.array([t**3 / 6, 0, 0]) for t in range(6)]  # x = t^3/6 (per tick): third difference 1
    assert eef_jerk(p, control_hz=10.0) == pytest.approx(1000.0)


def test_resolve_delay_errors_name_the_flag():
    src = PolicySource("checkpoint", "x")
    assert resolve_delay(["Lift"], "rtc", None, 120.0, None, src) == 3  # 120 ms at 20 Hz, rounded up
    assert resolve_delay(["Lift"], "rtc", None, 100.0, None, src) == 2
    for args, flag in (((["Lift"], "warp", 1, None, None, src), "--exec-mode"),
                       ((["Lift"], "rtc", 1, 50.0, None, src), "--delay-ms"),
                       ((["Lift"], "rtc", 9, None, None, src), "--delay-steps 9"),
                       ((["Lift"], "rtc", 2, None, None, PolicySource("expert")), "--exec-mode rtc")):
        with pytest.raises(ValueError, match=flag):
            resolve_delay(*args)


class Recorder:
    """Wraps a real policy: remembers the env tick of each query, its prefix and the chunk it returned."""

    def __init__(self, policy, env):
        self.policy, self.env, self.calls = policy, env, []
        self.metadata = policy.metadata

    def reset(self):
        pass

    def predict(self, observations, **kw):
        chunk = self.policy.predict(observations, **kw)[0]
        self.calls.append((self.env.t, kw.get("prev_actions"), kw.get("delay_steps"), chunk))
        return [chunk]


@pytest.fixture(scope="module")
def lift():
    import torch

    from sim_eval.envs import make_env
    from vla.config import tiny_config
    from vla.policy import VLAPolicy

    torch.set_num_threads(1)
    env = make_env("Lift", image_size=64)
    policy = VLAPolicy.create(tiny_config(action_horizon=16), [env.spec])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-zero outputs, so old and new chunks differ
        for p in policy.model.parameters():
            if p.dim() > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    yield env, policy
    env.close()


@pytest.mark.parametrize("mode, d", [("rtc", 3), ("naive", 2)])
def test_mujoco_rollout_executes_exactly_d_old_actions(lift, mode, d):
    env, policy = lift
    rec = Recorder(policy, env)
    executed = []
    step = env.step
    env.step = lambda a: (executed.append(np.asarray(a).copy()), step(a))[1]
    try:
        res = run_episode(env, rec, Job("Lift", 7), RolloutConfig(image_size=64, max_steps=30, exec_mode=mode,
                                                                  delay_steps=d, execute_horizon=8))
    finally:
        del env.step
    assert res.steps == len(executed) == 30 and len(rec.calls) >= 4
    assert [c[0] for c in rec.calls[:4]] == [0, 8 - d, 16 - d, 24 - d]
    switched = [(a, b) for a, b in zip(rec.calls, rec.calls[1:]) if b[0] + d < len(executed)]
    assert len(switched) >= 3
    for (t_old, _, _, old), (tq, prev, delay, new) in switched:
        last = min(len(executed), t_old + len(old))
        olds = [t for t in range(tq, last) if np.array_equal(executed[t], old[t - t_old])]
        run = next(i for i, t in enumerate(olds + [None]) if t != tq + i)  # consecutive old actions from tq
        assert run == d, f"query at tick {tq}: {run} old actions executed before the switch"
        np.testing.assert_array_equal(executed[tq + d], new[d])  # then the new chunk, from its row d
        if mode == "rtc":
            assert delay == d and np.array_equal(prev[0], old[tq - t_old:])
            np.testing.assert_array_equal(new[:d], old[tq - t_old:tq - t_old + d])
    assert res.discontinuity is not None and res.jerk is not None and res.step_change is not None


@pytest.mark.parametrize("args, expected", [
    (["--exec-mode", "rtc", "--delay-steps", "2"], "--exec-mode rtc: the scripted expert takes no committed prefix"),
    (["--exec-mode", "naive", "--delay-steps", "9"], "--delay-steps 9: at most the execute horizon (8)"),
    (["--exec-mode", "blend", "--delay-steps", "1", "--delay-ms", "50"], "give one of them"),
])
def test_vla_eval_delay_flags_fail_in_one_line(args, expected, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(root / "serve" / "robot_client")]))
    cmd = [sys.executable, "-m", "vla.cli", "eval", *args, "--episodes", "1", "--out", str(tmp_path / "r")]
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=60)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1 and lines[0].startswith("vla eval: error: "), p.stderr
    assert expected in lines[0] and not (tmp_path / "r").exists()


def test_measured_latency_of_a_served_policy():
    """--delay-ms measured: a real loopback server whose policy takes 120 ms per call -> >= 120 ms -> 3 steps at
    20 Hz; a checkpoint (not served) is refused in one line."""
    from serve.server import running_server
    from serve.toy_policy import ToyPolicy
    from sim_eval.checks import resolve_eval
    from sim_eval.evaluate import measured_latency_ms
    from sim_eval.tasks import task_spec

    with running_server(ToyPolicy([task_spec("Lift", 48)], call_ms=120.0), max_wait_ms=0.0) as srv:
        src = PolicySource.parse(srv.url)
        plan = resolve_eval(src, ["Lift"])
        ms = measured_latency_ms(src, plan, "Lift", tries=3)
    assert 120.0 <= ms < 1000.0
    assert resolve_delay(["Lift"], "rtc", None, ms, None, src) == int(np.ceil(ms / 50.0))
    with pytest.raises(ValueError, match="--delay-ms measured: only for a served policy"):
        measured_latency_ms(PolicySource("checkpoint", "x"), plan, "Lift")
