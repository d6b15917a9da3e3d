"""Seeds of sim episodes: one home for how a run's first seed fans out to episodes and policy queries.

An episode is fully determined by its seed (env reset, factor draws) and a policy query inside it by
``query_seed(episode_seed, step)``, so any episode can be re-run alone (to film it, to debug it) and
gives the same result in any worker. Collection and evaluation never share seeds: ``vla collect``
starts at 0, evaluations of trained policies start at :data:`EVAL_SEED` (``vla demo``) and in-training
validation at :data:`VALIDATION_SEED`.
"""

from __future__ import annotations

COLLECT_SEED = 0
EVAL_SEED = 1000
VALIDATION_SEED = 10_000
_QUERY_STRIDE = 100_003  # prime > any episode's step count: (episode, step) pairs never collide


def episode_seeds(first: int, n: int) -> list[int]:
    """The seeds of ``n`` consecutive episodes starting at ``first``."""
    if n < 0:
        raise ValueError(f"number of episodes must be >= 0, got {n}")
    return list(range(int(first), int(first) + int(n)))


def query_seed(episode_seed: int, step: int) -> int:
    """The sampling seed of the policy query made at ``step`` of the episode with ``episode_seed``."""
    return int(episode_seed) * _QUERY_STRIDE + int(step)
