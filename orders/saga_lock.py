"""One driver per order: a session advisory lock on the orders database, taken without waiting.

PostgreSQL frees it when its holder's session ends, so a worker that dies mid-saga leaves nothing to clean up.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

from orders.db import ALIAS

_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(%s, 11))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 11))"


@contextmanager
def saga_lock(order_id: uuid.UUID) -> Iterator[bool]:
    """Yields whether this session now holds the order's lock (false: someone is driving it); frees it after."""
    key = f"saga:{order_id}"
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(_TRY_LOCK, [key])
        (acquired,) = cursor.fetchone()
    try:
        yield bool(acquired)
    finally:
        if acquired:
            with connections[ALIAS].cursor() as cursor:
                cursor.execute(_UNLOCK, [key])
