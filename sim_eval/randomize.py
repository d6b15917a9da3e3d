"""Per-episode randomization of nuisance factors for demo collection (``vla collect --randomize``).

``Randomize("table_color", 2)`` (text ``"table_color@2"``) makes every episode draw that factor's
severity uniformly from 0..2 (0 = nominal in that episode) and then the factor's own perturbation,
exactly as evaluation applies ``FactorSetting(name, severity, seed)`` (see :mod:`sim_eval.factors`),
but with the factor seed :data:`sim_eval.seeds.COLLECT_FACTOR_SEED`, which no evaluation uses. An
env built with ``Randomize`` items among its factors draws them in every ``reset(seed)``; the draws
are a pure function of (factor, max severity, episode seed). Build-time factors: ``distractors``
adds its pool once (episodes place 0..2 x severity of them); ``object_size`` recompiles the scene in
episodes whose drawn scale differs from the one compiled (~1 s each).
``object_color`` and ``distractors`` never combine in one episode (:data:`sim_eval.factors.EXCLUSIVE`): when both draw a
severity, a per-episode coin keeps one. ``paraphrase`` is refused:
the task's paraphrases are the evaluation's held-out instructions (the training wordings of grounded tasks and
MT10 are drawn by ``vla collect`` itself, see :mod:`sim_eval.language`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sim_eval.factors import FACTORS, GENERIC_FACTORS
from sim_eval.seeds import COLLECT_FACTOR_SEED

# factors whose draws must never reach training data, and why
REFUSED = {"paraphrase": "its paraphrases are the held-out instructions evaluation tests (training wordings, "
                         "where a task has them, are drawn by collect itself), so training on them would leak the eval"}
CHOICES = tuple(n for n in FACTORS if n not in REFUSED)
_SEVERITY, _SIGN = 1, 2  # stream tags: severity and object-size sign draws are apart from the perturbation's


@dataclass(frozen=True)
class Randomize:
    """Draw ``name``'s severity per episode from 0..``max_severity`` (1..3)."""

    name: str
    max_severity: int = 2
    seed: int = COLLECT_FACTOR_SEED

    def __post_init__(self) -> None:
        if self.name in REFUSED:
            raise ValueError(f"factor {self.name!r} cannot be randomized: {REFUSED[self.name]}")
        if self.name not in FACTORS:
            raise ValueError(f"unknown factor {self.name!r}; choose from {list(CHOICES)}")
        if not 1 <= int(self.max_severity) <= 3:
            raise ValueError(f"factor {self.name!r}: severity must be 1..3, got {self.max_severity}")

    @property
    def label(self) -> str:
        return f"{self.name}@{self.max_severity}"

    def _rng(self, episode_seed: int, tag: int) -> np.random.Generator:
        return np.random.default_rng([int(self.seed), int(episode_seed), zlib.crc32(self.name.encode()), tag])

    def severity(self, episode_seed: int) -> int:
        """This episode's severity, uniform in 0..max_severity."""
        return int(self._rng(episode_seed, _SEVERITY).integers(0, self.max_severity + 1))

    def scale(self, episode_seed: int) -> float:
        """``object_size`` only: this episode's scale 1 +- 0.12 x severity (sign drawn per episode)."""
        sign = 1.0 if self._rng(episode_seed, _SIGN).uniform() < 0.5 else -1.0
        return float(1.0 + sign * 0.12 * self.severity(episode_seed))


def parse_randomize(items: Iterable[str | Randomize], suite: str = "robosuite") -> tuple[Randomize, ...]:
    """``["lighting", "table_color@3"]`` (severity 2 when omitted) -> Randomize specs in the canonical
    factor order (so the order on the command line does not change the data); one-line ValueErrors."""
    out: dict[str, Randomize] = {}
    for item in items:
        if isinstance(item, Randomize):
            r = item
        else:
            name, at, sev = str(item).partition("@")
            try:
                if at and not sev.strip().lstrip("-").isdigit():
                    raise ValueError(f"severity must be an integer 1..3, got {sev!r}")
                r = Randomize(name.strip(), int(sev) if at else 2)
            except ValueError as e:
                raise ValueError(f"--randomize {item!r}: {e}") from None
        if r.name in out:
            raise ValueError(f"--randomize {r.label!r}: factor {r.name!r} given twice")
        if suite != "robosuite" and r.name not in GENERIC_FACTORS:
            raise ValueError(f"--randomize {r.label!r}: robosuite-only factor; on {suite} use "
                             f"{[n for n in GENERIC_FACTORS if n not in REFUSED]}")
        out[r.name] = r
    return tuple(sorted(out.values(), key=lambda r: list(FACTORS).index(r.name)))
