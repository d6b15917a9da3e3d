"""Seeds of sim episodes: one home for how a run's first seed fans out to episodes and policy queries.

An episode is fully determined by its seed (env reset, factor draws) and a policy query inside it by
``query_seed(episode_seed, step)``, so any episode can be re-run alone (to film it, to debug it) and
gives the same result in any worker. Collection and evaluation never share seeds:

- episode seeds (env reset: object placement): ``vla collect`` uses ``[COLLECT_SEED, EVAL_SEED)`` and
  refuses a run whose attempts would reach :data:`EVAL_SEED` (:func:`check_collect_seeds`);
  evaluations of trained policies start at :data:`EVAL_SEED` (``vla demo``, ``vla eval``) and
  in-training validation at :data:`VALIDATION_SEED`.
- factor draws (``rng(factor seed, episode seed, factor name)``): evaluation's factor seed is
  ``--factor-seed`` (default 0); ``vla collect --randomize`` draws with :data:`COLLECT_FACTOR_SEED`
  (and its severity draws from separate streams), so a collected scene is never an evaluated one even
  if someone evaluates on collection episode seeds.
"""

from __future__ import annotations

COLLECT_SEED = 0
EVAL_SEED = 1000
VALIDATION_SEED = 10_000
COLLECT_FACTOR_SEED = 1_000_003  # factor seed of collection draws; evaluation's --factor-seed defaults to 0
_QUERY_STRIDE = 100_003  # prime > any episode's step count: (episode, step) pairs never collide


def episode_seeds(first: int, n: int) -> list[int]:
    """The seeds of ``n`` consecutive episodes starting at ``first``."""
    if n < 0:
        raise ValueError(f"number of episodes must be >= 0, got {n}")
    return list(range(int(first), int(first) + int(n)))


def query_seed(episode_seed: int, step: int) -> int:
    """The sampling seed of the policy query made at ``step`` of the episode with ``episode_seed``."""
    return int(episode_seed) * _QUERY_STRIDE + int(step)


def check_collect_seeds(first: int, attempts: int) -> None:
    """Collection's episode seeds ``first .. first+attempts-1`` must lie in ``[0, EVAL_SEED)``."""
    if first < 0 or first + attempts > EVAL_SEED:
        raise ValueError(f"--seed {first} with up to {attempts} attempts would use episode seeds {first}.."
                         f"{first + attempts - 1}; collection seeds must lie in 0..{EVAL_SEED - 1} (seeds from "
                         f"{EVAL_SEED} on are evaluation's): lower --seed, --episodes or --max-attempts")
