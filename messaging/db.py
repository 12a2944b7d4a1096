"""Transactions always on a module's own alias (a bare atomic() wraps default)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from django.db import connections, models, router, transaction

M = TypeVar("M", bound=models.Model)


def atomic_on(alias: str) -> Callable[..., AbstractContextManager[object]]:
    """Return ``atomic()`` bound to ``alias``: ``atomic = atomic_on("orders")``."""

    def atomic(*, savepoint: bool = True, durable: bool = False) -> AbstractContextManager[object]:
        return transaction.atomic(using=alias, savepoint=savepoint, durable=durable)

    return atomic


def create_once(model: type[M], *, defaults: dict[str, Any] | None = None, **lookup: Any) -> tuple[M, bool]:
    """``get_or_create`` in one round trip: ``INSERT … ON CONFLICT DO NOTHING``.

    ``lookup`` must be covered by a unique constraint. Returns the row and
    whether this call created it (the first writer wins; the rest read it).
    No savepoint, no pre-read: this is the idempotency primitive of the
    participants' steps.
    """
    obj = model(**lookup, **(defaults or {}))
    alias = router.db_for_write(model)
    connection = connections[alias]
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    pk = connection.ops.quote_name(meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) VALUES ({placeholders}) "
            f"ON CONFLICT DO NOTHING RETURNING {pk}",
            values,
        )
        row = cursor.fetchone()
    if row is None:
        return model._default_manager.using(alias).get(**lookup), False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = alias
    return obj, True
