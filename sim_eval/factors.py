"""Generalization factors (placeholder; filled in below)."""
from __future__ import annotations


class FactorSet:
    def __init__(self, factors=()):
        self.factors = list(factors)

    def prepare(self, env) -> None:
        pass

    def apply(self, env, seed: int) -> None:
        pass
