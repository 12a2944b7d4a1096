from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from functools import cache

from django.db import connections

from messaging.api import model_columns, rows_of
from orders.models import Order, OrderHistory, OrderLine


@cache
def _order_with_rows_sql(*, many: bool = False) -> str:
    """The order, and its lines and history as arrays of JSON objects (oldest first), by id (or, ``many``, by
    an array of ids) and client."""
    ops = connections[Order.objects.db].ops
    orders, lines, history = (ops.quote_name(m._meta.db_table) for m in (Order, OrderLine, OrderHistory))
    # Columns named, not o.*: a prepared statement whose result changes shape after a migration fails.
    return (
        f"SELECT {model_columns(Order)}, "
        f"ARRAY(SELECT jsonb_build_object('sku', l.sku, 'quantity', l.quantity, 'unit_price_minor', "
        f"l.unit_price_minor) FROM {lines} l WHERE l.order_id = o.id ORDER BY l.id) AS line_rows, "
        f"ARRAY(SELECT jsonb_build_object('from_state', h.from_state, 'to_state', h.to_state, "
        f"'reason', h.reason, 'actor', h.actor, 'at', h.created_at) "
        f"FROM {history} h WHERE h.order_id = o.id ORDER BY h.id) AS history_rows "
        f"FROM {orders} o WHERE o.id {'= ANY(%s)' if many else '= %s'} AND o.client_id = %s"
    )


def saga_order_sql(source: str) -> str:
    """A SELECT of what a saga run reads, the order's columns and its lines as (sku, quantity) pairs in the
    order they were placed, from ``source`` (the orders table, or a WITH clause returning its columns) as
    ``o``; a WHERE clause may follow. ``saga_order_of`` makes the order of its row."""
    lines = connections[Order.objects.db].ops.quote_name(OrderLine._meta.db_table)
    return (
        f"SELECT {model_columns(Order)}, "
        f"ARRAY(SELECT ARRAY[l.sku, l.quantity::text] FROM {lines} l WHERE l.order_id = o.id ORDER BY l.id) "
        f"AS line_pairs FROM {source} o"
    )


def saga_orders_of(
    sql: str, params: Sequence[object] | Mapping[str, object], *, extra: tuple[str, ...] = ()
) -> list[Order]:
    """The orders of ``sql``'s rows (a ``saga_order_sql``, and after its columns those named ``extra``), with
    ``line_pairs`` as (sku, quantity) tuples. A row of NULLs (an outer join that found nothing) makes an
    order whose ``pk`` is None."""
    found = rows_of(Order, sql, params, extra=("line_pairs", *extra))
    for order in found:
        order.line_pairs = [(sku, int(quantity)) for sku, quantity in order.line_pairs or ()]
    return found


def saga_order_of(sql: str, params: Sequence[object] | Mapping[str, object]) -> Order | None:
    """The order of ``sql``'s first row (a ``saga_order_sql``), with ``line_pairs`` as (sku, quantity) tuples."""
    found = saga_orders_of(sql, params)
    return found[0] if found else None


@cache
def _order_for_saga_sql() -> str:
    orders = connections[Order.objects.db].ops.quote_name(Order._meta.db_table)
    return f"{saga_order_sql(orders)} WHERE o.id = %s"


def order_for_saga(*, order_id: uuid.UUID) -> Order | None:
    """The order a saga run drives, with its lines as ``line_pairs`` ((sku, quantity) tuples, not the dicts of
    ``order_for_client``'s ``line_rows``): one statement, where the reservation step read the lines with one of
    its own."""
    return saga_order_of(_order_for_saga_sql(), [order_id])


def order_for_client(*, order_id: uuid.UUID, client_id: uuid.UUID) -> Order | None:
    """The order with its lines and history as ``line_rows`` and ``history_rows`` (dicts, oldest first), in
    one statement written out: the API's most frequent request (clients poll it) took three through
    Django's prefetch machinery, and building the same single query with the ORM cost more CPU than the
    three."""
    found = rows_of(Order, _order_with_rows_sql(), [order_id, client_id], extra=("line_rows", "history_rows"))
    return _with_rows_decoded(found[0]) if found else None


def orders_for_client(*, order_ids: Sequence[uuid.UUID], client_id: uuid.UUID) -> list[Order]:
    """The client's orders among ``order_ids``, as ``order_for_client`` reads one, in one statement (in no
    particular order; ids the client has no order under are left out)."""
    found = rows_of(
        Order, _order_with_rows_sql(many=True), [list(order_ids), client_id], extra=("line_rows", "history_rows")
    )
    return [_with_rows_decoded(order) for order in found]


def _with_rows_decoded(order: Order) -> Order:
    # Django's PostgreSQL backend hands jsonb to Python as text.
    order.line_rows = [json.loads(row) for row in order.line_rows]
    order.history_rows = [json.loads(row) for row in order.history_rows]
    return order


def order_state(*, order_id: uuid.UUID) -> str | None:
    return Order.objects.filter(pk=order_id).values_list("state", flat=True).first()


def order_moved(order: Order) -> bool:
    """Whether someone (a cancel, a person, another worker) changed the order since this copy was read."""
    table = connections[Order.objects.db].ops.quote_name(Order._meta.db_table)
    with connections[Order.objects.db].cursor() as cursor:
        cursor.execute(f"SELECT state, version FROM {table} WHERE id = %s", [order.id])
        return cursor.fetchone() != (order.state, order.version)
