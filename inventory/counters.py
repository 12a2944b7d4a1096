"""A stock row's counters, each move one UPDATE written once: the order path's hold and sale run on every
order, and the ORM would build and compile the same ``F()`` expression statement anew each time (about
three times the CPU of the statement itself)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connections, router

from inventory.models import Reservation, ReservationStatus, StockItem, StockPolicy

ALIAS = router.db_for_write(StockItem)
_TABLE = StockItem._meta.db_table
_RESERVATIONS = Reservation._meta.db_table
_HOLD = f'UPDATE "{_TABLE}" SET "reserved" = "reserved" + %s WHERE "sku" = %s AND "on_hand" >= "reserved" + %s'
_FREE = f'UPDATE "{_TABLE}" SET "reserved" = "reserved" - %s WHERE "sku" = %s'


# An order's sale in one statement: lock its reservations (in SKU order, as a release does); unless one has
# lapsed, turn the held ones COMMITTED and move their STRICT units from reserved to sold, locking those stock
# rows in SKU order (as every other path does: no deadlock between two orders of the same SKUs). EVENTUAL
# sales are booked later, in bulk, by eventual_sales_settle: the order path never touches a hot stock row.
_COMMIT = f"""
WITH mine AS (
    SELECT "id", "sku", "status" FROM "{_RESERVATIONS}" WHERE "order_id" = %(order_id)s ORDER BY "sku" FOR UPDATE
), lapsed AS (
    SELECT "sku" FROM mine WHERE "status" IN (%(released)s, %(returned)s)
), held AS (
    UPDATE "{_RESERVATIONS}" AS r SET "status" = %(committed)s, "updated_at" = %(now)s
    FROM mine
    WHERE r."id" = mine."id" AND mine."status" = %(held)s AND NOT EXISTS (SELECT 1 FROM lapsed)
    RETURNING r."sku", r."quantity", r."policy"
), locked AS (
    SELECT s."sku" FROM "{_TABLE}" AS s
    WHERE s."sku" IN (SELECT "sku" FROM held WHERE "policy" = %(strict)s)
    ORDER BY s."sku" FOR UPDATE OF s
), sold AS (
    UPDATE "{_TABLE}" AS s
    SET "on_hand" = s."on_hand" - held."quantity", "reserved" = s."reserved" - held."quantity",
        "sold" = s."sold" + held."quantity"
    FROM held JOIN locked ON locked."sku" = held."sku"
    WHERE s."sku" = held."sku"
)
SELECT (SELECT count(*) FROM mine), (SELECT coalesce(array_agg("sku" ORDER BY "sku"), '{{}}') FROM lapsed),
       (SELECT count(*) FROM held)
"""


@dataclass(frozen=True)
class Sale:
    reservations: int  # the order's, whatever their status
    lapsed: list[str]  # SKUs whose hold was released or returned: then nothing was sold
    committed: int  # held lines this call turned into sold ones


def units_sell_for_order(*, order_id: uuid.UUID, now: datetime) -> Sale:
    """Commit an order's held reservations and sell their STRICT units, in one statement."""
    params = {
        "order_id": order_id,
        "now": now,
        "held": ReservationStatus.HELD,
        "committed": ReservationStatus.COMMITTED,
        "released": ReservationStatus.RELEASED,
        "returned": ReservationStatus.RETURNED,
        "strict": StockPolicy.STRICT,
    }
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(_COMMIT, params)
        reservations, lapsed, committed = cursor.fetchone()
    return Sale(reservations=reservations, lapsed=list(lapsed), committed=committed)


def _execute(sql: str, params: list[object]) -> int:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def units_hold(*, sku: str, quantity: int) -> bool:
    """Reserve ``quantity`` units if that many are free; False (nothing changed) if not."""
    return _execute(_HOLD, [quantity, sku, quantity]) == 1


def units_free(*, sku: str, quantity: int) -> None:
    """Held units go back to the free ones."""
    _execute(_FREE, [quantity, sku])
