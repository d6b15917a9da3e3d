"""Two `accelerate launch --num_machines 2 --machine_rank 0/1` nodes (one process each, gloo, loopback
rendezvous) give the per-step losses of one process at the same global batch (batch 2 x grad-accum 2)."""

import pytest

from benchmarks.multinode_loopback import run
from tests.finetune_helpers import write_toy_dataset


@pytest.mark.slow  # three training processes start (torch + data pipeline each): ~1-3 min on 2 busy cores
def test_two_nodes_match_one_process(tmp_path):
    data = str(write_toy_dataset(tmp_path / "data", episodes=4, steps=16))
    one, two, meta = run(data, tmp_path, steps=2)
    assert meta["world_size"] == 2 and [r["step"] for r in one] == [r["step"] for r in two] == [1, 2]
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4), (a, b)
