"""Transactions always on a module's own alias (a bare atomic() wraps default)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from django.db import transaction


def atomic_on(alias: str) -> Callable[..., AbstractContextManager[object]]:
    """Return ``atomic()`` bound to ``alias``: ``atomic = atomic_on("orders")``."""

    def atomic(*, savepoint: bool = True, durable: bool = False) -> AbstractContextManager[object]:
        return transaction.atomic(using=alias, savepoint=savepoint, durable=durable)

    return atomic
