"""Crash points for fault-injection tests.

``CRASH_POINTS="relay.after_publish,saga.after_step:reserve_stock"`` in a
process's environment makes it die (``os._exit``) the moment it reaches one
of those points, exactly as a killed process would: no cleanup, no commit.
Unset in production, where ``crash_point`` is a set lookup.
"""

from __future__ import annotations

import os

_ARMED = frozenset(p.strip() for p in os.environ.get("CRASH_POINTS", "").split(",") if p.strip())
KILLED_EXIT_CODE = 137


def crash_point(name: str) -> None:
    if name in _ARMED:
        os._exit(KILLED_EXIT_CODE)
