"""Targeted filters for log lines of the simulators that tell a user of these tasks nothing.

robosuite logs install hints on import (no private macro file, optional robosuite_models and mink IK
packages missing) and, per env, that the BASIC controller config names body parts a Panda does not
have. Only those messages are dropped; every other robosuite warning (e.g. a joint limit reached)
still shows.
"""

from __future__ import annotations

import logging

_IRRELEVANT = (
    "No private macro file found",
    "It is recommended to use a private macro file",
    "To setup, run: python",
    "Could not import robosuite_models",
    "Could not load the mink-based whole-body IK",
    "The config has defined for the controller",
)


class _DropIrrelevant(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_IRRELEVANT)


def quiet_robosuite() -> None:
    """Install the filter on robosuite's logger (call before ``import robosuite``; idempotent)."""
    logger = logging.getLogger("robosuite_logs")
    if not any(isinstance(f, _DropIrrelevant) for f in logger.filters):
        logger.addFilter(_DropIrrelevant())
