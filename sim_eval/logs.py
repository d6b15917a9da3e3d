"""Targeted filters for log lines of the simulators that tell a user of these tasks nothing.

robosuite logs install hints on import (no private macro file, optional robosuite_models and mink IK
packages missing) and, per env, which controller file it loads (INFO) and that the BASIC controller
config names body parts a Panda does not have. Only those are dropped; every other robosuite warning
(e.g. a joint limit reached) still shows.
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


def import_robosuite():
    """``import robosuite`` with its logger filtered (hints dropped, INFO off, warnings kept)."""
    logger = logging.getLogger("robosuite_logs")
    if not any(isinstance(f, _DropIrrelevant) for f in logger.filters):
        logger.addFilter(_DropIrrelevant())  # before the import: its hints are logged while importing
    import robosuite

    logger.setLevel(logging.WARNING)  # robosuite sets INFO while importing
    return robosuite
