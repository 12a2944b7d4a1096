"""Transactions always on a module's own alias (a bare atomic() wraps default), and the critical path's
statements without the ORM's per-call query building."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field
from django.db.models.options import Options

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
    sql, fields = _insert_sql(model, 1, alias)
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"{sql} ON CONFLICT DO NOTHING RETURNING {connection.ops.quote_name(model._meta.pk.column)}", values
        )
        row = cursor.fetchone()
    if row is None:
        return model._default_manager.using(alias).get(**lookup), False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = alias
    return obj, True


# The statements of the order's critical path, written from the model's fields and kept by shape. Django
# builds and compiles a query anew for every call: two thirds of a single-row statement's CPU in the saga
# worker (an UPDATE by key 0.66 ms through the ORM, 0.22 ms so). Values go through the fields' own
# conversions both ways, as the ORM's would; only equality filters (``name=value``, or ``name__in=[...]``
# sent as one array parameter, so every length shares one statement), plain values and no signals.
IN = "__in"


def _field(meta: Options, name: str) -> Field:
    return meta.get_field(name.removesuffix(IN))  # a field's name or its attname ("order" or "order_id")


@functools.cache
def _insert_sql(model: type[models.Model], rows: int, alias: str) -> tuple[str, tuple[Field, ...]]:
    meta = model._meta
    quote = connections[alias].ops.quote_name
    fields = tuple(f for f in meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField)))
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    columns = ", ".join(quote(f.column) for f in fields)
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([row] * rows)}", fields


def _runs(objs: Sequence[models.Model]) -> list[tuple[type[models.Model], int]]:
    """Consecutive instances of one model: ``[(model, how many), …]``, in the order given."""
    runs: list[tuple[type[models.Model], int]] = []
    for obj in objs:
        model = type(obj)
        if runs and runs[-1][0] is model:
            runs[-1] = (model, runs[-1][1] + 1)
        else:
            runs.append((model, 1))
    return runs


def _alias_of(runs: Sequence[tuple[type[models.Model], int]]) -> str:
    aliases = {router.db_for_write(model) for model, _ in runs}
    if len(aliases) != 1:
        raise ValueError(f"rows of one statement must share one database alias, not {sorted(aliases)}")
    return aliases.pop()


@functools.cache
def _insert_all_sql(runs: tuple[tuple[type[models.Model], int], ...], alias: str) -> str:
    """One statement for several models' rows: each run but the last an INSERT in a WITH clause. A foreign
    key to a row of an earlier run holds (Django's constraints are checked at commit, PostgreSQL's
    immediate ones at the statement's end)."""
    *first, last = [_insert_sql(model, rows, alias)[0] for model, rows in runs]
    if not first:
        return last
    return "WITH " + ", ".join(f"i{n} AS ({sql})" for n, sql in enumerate(first)) + f" {last}"


def _row_values(objs: Sequence[models.Model], alias: str, connection: BaseDatabaseWrapper) -> list[Any]:
    """Every instance's column values, in ``_insert_sql``'s order, through the fields' own conversions."""
    return [
        f.get_db_prep_save(f.pre_save(obj, True), connection)
        for obj in objs
        for f in _insert_sql(type(obj), 1, alias)[1]
    ]


def insert_rows(objs: Sequence[models.Model]) -> None:
    """INSERT instances in one statement, as ``bulk_create`` would (defaults and ``auto_now`` applied); a
    database-generated primary key is not read back. Instances of several models (on one alias) go in one
    statement too, in the order given: a parent before the rows that refer to it."""
    if not objs:
        return
    runs = _runs(objs)
    alias = _alias_of(runs)
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(_insert_all_sql(tuple(runs), alias), _row_values(objs, alias, connection))
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias


def _where(meta: Options, names: Iterable[str], alias: str) -> str:
    quote = connections[alias].ops.quote_name
    return " AND ".join(
        f"{quote(_field(meta, name).column)} = {'ANY(%s)' if name.endswith(IN) else '%s'}" for name in names
    )


def _where_values(where: Mapping[str, Any], fields: tuple[Field, ...], connection: BaseDatabaseWrapper) -> list[Any]:
    if any(value is None for value in where.values()):
        raise ValueError("a NULL never equals anything; filter with the ORM's __isnull")
    values = []
    for (name, value), f in zip(where.items(), fields, strict=True):
        if name.endswith(IN):
            if isinstance(value, str | bytes | Mapping):
                raise ValueError(f"{name} takes a collection of values, not {type(value).__name__}")
            items = list(value)  # a generator is read once
            if any(item is None for item in items):
                raise ValueError(f"{name} takes a collection of values, none of them NULL")
            values.append([f.get_db_prep_value(item, connection, prepared=False) for item in items])
        else:
            values.append(f.get_db_prep_value(value, connection, prepared=False))
    return values


@functools.cache
def _update_sql(
    model: type[models.Model], names: tuple[str, ...], where: tuple[str, ...], alias: str
) -> tuple[str, tuple[Field, ...], tuple[Field, ...]]:
    meta = model._meta
    quote = connections[alias].ops.quote_name
    assignments = ", ".join(f"{quote(_field(meta, name).column)} = %s" for name in names)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {_where(meta, where, alias)}"
    return sql, tuple(_field(meta, name) for name in names), tuple(_field(meta, name) for name in where)


def update_where(model: type[models.Model], *, where: Mapping[str, Any], values: Mapping[str, Any]) -> int:
    """``UPDATE … SET values WHERE`` every ``where`` field equals its value (or one of them, for ``name__in``);
    returns the rows updated."""
    alias = router.db_for_write(model)
    connection = connections[alias]
    sql, value_fields, where_fields = _update_sql(model, tuple(values), tuple(where), alias)
    params = [f.get_db_prep_save(value, connection) for f, value in zip(value_fields, values.values(), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params + _where_values(where, where_fields, connection))
        return cursor.rowcount


Converters = tuple[tuple[int, Callable[..., Any], Any], ...]


@functools.cache
def _reading(model: type[models.Model], alias: str) -> tuple[str, tuple[str, ...], Converters]:
    """The model's columns (quoted, in field order), their attribute names and the converters of their values."""
    meta = model._meta
    connection = connections[alias]
    fields = meta.concrete_fields
    converters = []
    for index, f in enumerate(fields):
        col = f.get_col(meta.db_table)
        converters += [(index, c, col) for c in connection.ops.get_db_converters(col) + f.get_db_converters(connection)]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    return columns, tuple(f.attname for f in fields), tuple(converters)


def model_columns(model: type[models.Model]) -> str:
    """The model's columns, quoted and in the order ``rows_of`` reads them."""
    return _reading(model, router.db_for_read(model))[0]


def _instances(model: type[M], alias: str, rows: list[tuple[Any, ...]], extra: tuple[str, ...] = ()) -> list[M]:
    connection = connections[alias]
    _, attnames, converters = _reading(model, alias)
    width = len(attnames)
    found = []
    for row in rows:
        values = list(row[:width])
        for index, convert, col in converters:
            values[index] = convert(values[index], col, connection)
        obj = model.from_db(alias, attnames, values)
        for name, value in zip(extra, row[width:], strict=True):
            setattr(obj, name, value)
        found.append(obj)
    return found


def rows_of(
    model: type[M], sql: str, params: Sequence[Any] | Mapping[str, Any], *, extra: tuple[str, ...] = ()
) -> list[M]:
    """Instances from a statement of one's own whose first columns are ``model_columns(model)``; the columns
    after them are set, as they come, on attributes named ``extra`` (what ``Model.objects.raw`` does, without
    its per-call resolution of columns to fields)."""
    alias = router.db_for_read(model)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return _instances(model, alias, rows, extra)


def _unmodified(db_type: str) -> str:
    return re.sub(r"\([^)]*\)", "", db_type)


def _inserts_if(runs: tuple[tuple[type[models.Model], int], ...], alias: str, condition: str) -> list[str]:
    """A WITH clause per run, inserting its rows only if the clause named ``condition`` returned a row."""
    quote = connections[alias].ops.quote_name
    inserts = []
    for n, (row_model, rows) in enumerate(runs):
        _, fields = _insert_sql(row_model, 1, alias)
        # Cast: a parameter in VALUES has no column to take its type from. Without the type's modifier
        # (varchar(64) → varchar): an explicit cast would cut a value too long, the INSERT refuses it.
        row = "(" + ", ".join(f"%s::{_unmodified(f.cast_db_type(connections[alias]))}" for f in fields) + ")"
        columns = ", ".join(quote(f.column) for f in fields)
        inserts.append(
            f"i{n} AS (INSERT INTO {quote(row_model._meta.db_table)} ({columns}) "
            f"SELECT * FROM (VALUES {', '.join([row] * rows)}) AS v WHERE EXISTS (SELECT 1 FROM {condition}))"
        )
    return inserts


@functools.cache
def _update_then_insert_sql(
    model: type[models.Model],
    names: tuple[str, ...],
    where: tuple[str, ...],
    runs: tuple[tuple[type[models.Model], int], ...],
    alias: str,
) -> tuple[str, tuple[Field, ...], tuple[Field, ...]]:
    update, value_fields, where_fields = _update_sql(model, names, where, alias)
    inserts = _inserts_if(runs, alias, "moved")
    # Every data-modifying WITH clause runs to completion whether or not the main query reads it.
    sql = f"WITH moved AS ({update} RETURNING 1), {', '.join(inserts)} SELECT count(*) FROM moved"
    return sql, value_fields, where_fields


def update_where_then_insert(
    model: type[models.Model], *, where: Mapping[str, Any], values: Mapping[str, Any], rows: Sequence[models.Model]
) -> bool:
    """``update_where`` and, only if it changed a row, INSERT ``rows`` (instances of one model or several, on
    the same alias, parents before the rows that refer to them), in one statement: atomic without a
    transaction of its own, so no ``BEGIN`` and ``COMMIT`` round trips when it runs alone. ``where`` must
    match one row at most. Returns whether it did."""
    if not rows:
        raise ValueError("rows to insert are required: without them use update_where")
    runs = _runs(rows)
    alias = _alias_of([(model, 1), *runs])
    connection = connections[alias]
    sql, value_fields, where_fields = _update_then_insert_sql(model, tuple(values), tuple(where), tuple(runs), alias)
    params = [f.get_db_prep_save(value, connection) for f, value in zip(value_fields, values.values(), strict=True)]
    params += _where_values(where, where_fields, connection)
    params += _row_values(rows, alias, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (moved,) = cursor.fetchone()
    return _written(moved, rows, alias)


@functools.cache
def _claim_then_insert_sql(
    model: type[models.Model], runs: tuple[tuple[type[models.Model], int], ...], alias: str
) -> str:
    claim, _ = _insert_sql(model, 1, alias)
    inserts = _inserts_if(runs, alias, "claimed")
    claimed = f"claimed AS ({claim} ON CONFLICT DO NOTHING RETURNING 1)"
    return f"WITH {claimed}, {', '.join(inserts)} SELECT count(*) FROM claimed"


def claim_then_insert(claim: models.Model, rows: Sequence[models.Model]) -> bool:
    """INSERT ``claim`` unless a row with one of its unique keys exists and, only if it went in, ``rows`` (on
    the same alias), in one statement. A concurrent statement with the same key waits for this one to
    commit, then finds the row and inserts nothing: an idempotency key's first request wins without a lock
    or a transaction of its own. Returns whether ``claim`` (and ``rows``) went in."""
    if not rows:
        raise ValueError("rows to insert are required: without them use create_once")
    runs = _runs(rows)
    alias = _alias_of([(type(claim), 1), *runs])
    connection = connections[alias]
    params = _row_values([claim], alias, connection) + _row_values(rows, alias, connection)
    with connection.cursor() as cursor:
        cursor.execute(_claim_then_insert_sql(type(claim), tuple(runs), alias), params)
        (claimed,) = cursor.fetchone()
    return _written(claimed, [claim, *rows], alias)


def _written(happened: int, rows: Sequence[models.Model], alias: str) -> bool:
    if not happened:
        return False
    for obj in rows:
        obj._state.adding = False
        obj._state.db = alias
    return True


@functools.cache
def _select_sql(
    model: type[models.Model], where: tuple[str, ...], order_by: tuple[str, ...], for_update: bool, alias: str
) -> tuple[str, tuple[Field, ...]]:
    meta = model._meta
    quote = connections[alias].ops.quote_name
    columns, _, _ = _reading(model, alias)
    sql = f"SELECT {columns} FROM {quote(meta.db_table)}"
    if where:
        sql += f" WHERE {_where(meta, where, alias)}"
    if order_by:
        sql += " ORDER BY " + ", ".join(quote(_field(meta, name).column) for name in order_by)
    if for_update:
        sql += " FOR UPDATE"
    return sql, tuple(_field(meta, name) for name in where)


def rows_where(model: type[M], *, order_by: tuple[str, ...] = (), for_update: bool = False, **where: Any) -> list[M]:
    """The instances whose ``where`` fields equal the values given (or one of them, for ``name__in``), as the
    ORM would build them."""
    alias = router.db_for_read(model)
    connection = connections[alias]
    sql, where_fields = _select_sql(model, tuple(where), order_by, for_update, alias)
    with connection.cursor() as cursor:
        cursor.execute(sql, _where_values(where, where_fields, connection))
        rows = cursor.fetchall()
    return _instances(model, alias, rows)
