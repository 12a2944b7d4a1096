from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connections

from messaging.api import model_columns, rows_of
from orders.models import Order, OrderHistory, OrderLine


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as the API shows it to its client: the columns it shows, its lines and its history (dicts,
    oldest first). Not a model instance: a lookup of 100 orders built 100 of them, each with the state
    machine's bookkeeping, for a read that changes nothing."""

    id: uuid.UUID
    state: str
    region: str
    currency: str
    customer_id: str
    subtotal_minor: int
    tax_minor: int
    failure_reason: str
    created_at: datetime
    line_rows: list[dict[str, Any]]
    history_rows: list[dict[str, Any]]

    @property
    def total_minor(self) -> int:
        return self.subtotal_minor + self.tax_minor


_VIEW_FIELDS = tuple(f for f in OrderView.__dataclass_fields__ if f not in ("line_rows", "history_rows"))


@cache
def _order_view_sql(*, many: bool = False) -> str:
    """What ``OrderView`` holds, by id (or, ``many``, by an array of ids) and client: the lines and the history
    each as one JSON array (text), decoded once per order rather than once per row."""
    quote = connections[Order.objects.db].ops.quote_name
    orders, lines, history = (quote(m._meta.db_table) for m in (Order, OrderLine, OrderHistory))
    columns = ", ".join(f"o.{quote(Order._meta.get_field(name).column)}" for name in _VIEW_FIELDS)
    return (
        f"SELECT {columns}, "
        f"(SELECT coalesce(jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity, "
        f"'unit_price_minor', l.unit_price_minor) ORDER BY l.id), '[]') FROM {lines} l "
        f"WHERE l.order_id = o.id)::text, "
        f"(SELECT coalesce(jsonb_agg(jsonb_build_object('from_state', h.from_state, 'to_state', h.to_state, "
        f"'reason', h.reason, 'actor', h.actor, 'at', h.created_at) ORDER BY h.id), '[]') FROM {history} h "
        f"WHERE h.order_id = o.id)::text "
        f"FROM {orders} o WHERE o.id {'= ANY(%s)' if many else '= %s'} AND o.client_id = %s"
    )


def _views(sql: str, params: Sequence[object]) -> list[OrderView]:
    with connections[Order.objects.db].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    width = len(_VIEW_FIELDS)
    return [
        OrderView(*row[:width], line_rows=json.loads(row[width]), history_rows=json.loads(row[width + 1]))
        for row in rows
    ]


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


def order_for_client(*, order_id: uuid.UUID, client_id: uuid.UUID) -> OrderView | None:
    """The order as the API shows it, with its lines and history, in one statement: the API's most frequent
    request (clients poll it)."""
    found = _views(_order_view_sql(), [order_id, client_id])
    return found[0] if found else None


def orders_for_client(*, order_ids: Sequence[uuid.UUID], client_id: uuid.UUID) -> list[OrderView]:
    """The client's orders among ``order_ids``, as ``order_for_client`` reads one, in one statement (in no
    particular order; ids the client has no order under are left out)."""
    return _views(_order_view_sql(many=True), [list(order_ids), client_id])


def order_state(*, order_id: uuid.UUID) -> str | None:
    return Order.objects.filter(pk=order_id).values_list("state", flat=True).first()


def order_moved(order: Order) -> bool:
    """Whether someone (a cancel, a person, another worker) changed the order since this copy was read."""
    table = connections[Order.objects.db].ops.quote_name(Order._meta.db_table)
    with connections[Order.objects.db].cursor() as cursor:
        cursor.execute(f"SELECT state, version FROM {table} WHERE id = %s", [order.id])
        return cursor.fetchone() != (order.state, order.version)
