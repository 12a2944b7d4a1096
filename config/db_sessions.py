"""Whether PostgreSQL has room for the sessions a worker's threads are about to open.

A saga thread keeps a session per module it drives, for as long as the worker runs: eight threads hold 48. A
server out of sessions refuses the next one ("sorry, too many clients already"), and the saga then retries
every order with backoff until a session frees up. Said at start-up, the cause is plain before the first
refusal instead of being found in the retries' warnings at 3 a.m. The count is of the sessions open then: a web
tier not yet under load has not opened all of its own, so a warning is certain, its absence is not.
"""

from __future__ import annotations

import logging
import threading

from django.db import DatabaseError, connections

from config.database import MODULE_ALIASES

log = logging.getLogger("config.db_sessions")

# Every module's alias but the kernel's (dead letters, reached only when a message fails for good).
SESSIONS_PER_THREAD = len([alias for alias in MODULE_ALIASES if alias != "messaging"])
# The sessions this role may open: a role that is not a superuser cannot have the reserved ones.
_IN_USE = (
    "SELECT current_setting('max_connections')::int - CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = "
    "current_user) THEN 0 ELSE current_setting('superuser_reserved_connections')::int END, count(*) "
    "FROM pg_stat_activity WHERE backend_type = 'client backend'"
)


def sessions_short(*, threads: int, alias: str = "orders") -> str | None:
    """Why the server may refuse some of the sessions of ``threads`` more threads, or ``None`` when it has
    room for them (or cannot be asked: the threads will find out, and retry, on their own)."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(_IN_USE)
            limit, in_use = cursor.fetchone()
    except DatabaseError:
        return None
    finally:
        connections[alias].close()  # the asking session is not one of the threads': it goes back at once
    needed = threads * SESSIONS_PER_THREAD - 1  # the one that asked was counted in use
    free = limit - in_use
    if needed <= free:
        return None
    return (
        f"{threads} threads will open about {needed} more PostgreSQL sessions, and the server has {free} free "
        f"(max_connections {limit} for this role, {in_use} in use): orders will be retried while sessions are refused. "
        "Lower the threads or raise max_connections (docs/runbook.md, 'database unavailable')."
    )


def warn_if_sessions_short(*, threads: int) -> None:
    reason = sessions_short(threads=threads)
    if reason is not None:
        log.warning("worker: %s", reason)


def warn_in_background_if_sessions_short(*, threads: int) -> threading.Thread:
    """``warn_if_sessions_short`` off the caller's thread: a server slow to answer must not hold up a worker's
    start (its event loop runs the ready signal's handlers before it consumes a task)."""
    checker = threading.Thread(
        target=warn_if_sessions_short, kwargs={"threads": threads}, name="session-count", daemon=True
    )
    checker.start()
    return checker
