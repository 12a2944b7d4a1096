"""Counting what a piece of code sends to the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections


@contextmanager
def statements_sent(alias: str = "orders") -> Iterator[list[str]]:
    """The SQL sent on ``alias`` inside the block, in order (inside a test's transaction, an ``atomic``
    block shows as SAVEPOINT and RELEASE SAVEPOINT)."""
    sent: list[str] = []

    def spy(execute, sql, *rest):  # type: ignore[no-untyped-def]
        sent.append(sql)
        return execute(sql, *rest)

    with connections[alias].execute_wrapper(spy):
        yield sent
