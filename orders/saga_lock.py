"""One driver per order: a session advisory lock on the orders database, taken without waiting.

PostgreSQL frees it when its holder's session ends, so a worker that dies mid-saga leaves nothing to clean up.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import DatabaseError, connections

from orders.db import ALIAS

T = TypeVar("T")
log = logging.getLogger("orders.saga")

# The lock's expression, for a statement that takes it along with its own work: its parameter is the key.
TRY_LOCK = "pg_try_advisory_lock(hashtextextended({key}, 11))"
_TRY_LOCK = f"SELECT {TRY_LOCK.format(key='%s')}"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 11))"


def saga_lock_key(order_id: uuid.UUID) -> str:
    return f"saga:{order_id}"


def lock_only(key: str) -> tuple[bool, None]:
    """A ``take`` for ``saga_lock_taken_by`` that takes the lock and does nothing else."""
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(_TRY_LOCK, [key])
        (acquired,) = cursor.fetchone()
    return bool(acquired), None


def _unlock(key: str) -> None:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(_UNLOCK, [key])


@contextmanager
def saga_lock_taken_by(order_id: uuid.UUID, take: Callable[[str], tuple[bool, T]]) -> Iterator[tuple[bool, T]]:
    """``saga_lock`` whose lock is taken by ``take(key)``: a statement on the orders alias whose SQL holds
    ``TRY_LOCK`` with the key as its parameter, and does its own work too, so the lock costs no round trip of
    its own. ``take`` returns whether the lock was acquired and its result; both are yielded.

    A session lock outlives a failed statement, so should ``take`` raise, the lock is let go all the same (a
    lock not held is a no-op), and the error goes on."""
    key = saga_lock_key(order_id)
    try:
        acquired, result = take(key)
    except BaseException:
        try:
            _unlock(key)
        except DatabaseError:  # a broken session: its locks went with it
            log.warning("order %s: could not let go of its saga lock after a failed start", order_id)
        raise
    try:
        yield acquired, result
    finally:
        if acquired:
            _unlock(key)


@contextmanager
def saga_lock(order_id: uuid.UUID) -> Iterator[bool]:
    """Yields whether this session now holds the order's lock (false: someone is driving it); frees it after."""
    with saga_lock_taken_by(order_id, lock_only) as (acquired, _):
        yield acquired
