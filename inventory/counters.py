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


# An order's hold in one statement, and so in one commit: unless the order holds some already, lock its STRICT
# stock rows in SKU order (as every path does), and only if every SKU exists and every STRICT one has the units
# free, move them to reserved and insert the order's reservations. All lines or none, decided on the locked
# rows; an EVENTUAL row is read, never locked. The row locks are held for this statement and its commit only,
# not across round trips: the hot SKU's row is where orders queue.
# The UPDATE writes the counters from the locked rows, not from its own ``s``: all of a statement reads one
# snapshot, and a row changed between it and the lock (stock freed or added meanwhile) is seen by the UPDATE
# as it was then. PostgreSQL checks the new row against ``stock_strict_never_oversold`` before it follows the
# row to its latest version, so a new row built from the stale counters could fail the check on figures the
# decision never used.
_HOLD_FOR_ORDER = f"""
WITH want AS (
    SELECT w."sku", w."quantity" FROM unnest(%(skus)s::varchar[], %(quantities)s::integer[]) AS w("sku", "quantity")
), before AS (
    SELECT EXISTS (SELECT 1 FROM "{_RESERVATIONS}" WHERE "order_id" = %(order_id)s) AS "held"
), known AS (
    SELECT s."sku", s."policy" FROM "{_TABLE}" AS s WHERE s."sku" IN (SELECT "sku" FROM want)
), strict AS MATERIALIZED (
    SELECT s."sku", s."on_hand", s."reserved", s."on_hand" - s."reserved" AS "free" FROM "{_TABLE}" AS s
    WHERE s."sku" IN (SELECT "sku" FROM known WHERE "policy" = %(strict)s) AND NOT (SELECT "held" FROM before)
    ORDER BY s."sku" FOR UPDATE OF s
), refused AS (
    SELECT want."sku", want."quantity", known."sku" IS NULL AS "unknown" FROM want
    LEFT JOIN known ON known."sku" = want."sku" LEFT JOIN strict ON strict."sku" = want."sku"
    WHERE known."sku" IS NULL OR strict."free" < want."quantity"
    ORDER BY want."sku" LIMIT 1
), go AS (
    SELECT NOT (SELECT "held" FROM before) AND NOT EXISTS (SELECT 1 FROM refused) AS "ok"
), holds AS (
    UPDATE "{_TABLE}" AS s SET "on_hand" = strict."on_hand", "reserved" = strict."reserved" + want."quantity"
    FROM want JOIN strict ON strict."sku" = want."sku"
    WHERE s."sku" = want."sku" AND (SELECT "ok" FROM go)
), made AS (
    INSERT INTO "{_RESERVATIONS}"
        ("id", "order_id", "sku", "quantity", "policy", "status", "expires_at", "settled_at", "created_at",
         "updated_at")
    SELECT gen_random_uuid(), %(order_id)s, want."sku", want."quantity", known."policy", %(held)s, %(expires_at)s,
           NULL, %(now)s, %(now)s
    FROM want JOIN known ON known."sku" = want."sku"
    WHERE (SELECT "ok" FROM go)
    RETURNING "id", "sku", "quantity", "policy"
)
SELECT (SELECT "held" FROM before), (SELECT "sku" FROM refused), (SELECT "quantity" FROM refused),
       (SELECT "unknown" FROM refused),
       (SELECT coalesce(array_agg(ARRAY["id"::text, "sku", "quantity"::text, "policy"]), '{{}}') FROM made)
"""


@dataclass(frozen=True)
class Hold:
    held_before: bool  # the order held stock already: nothing was done
    refused_sku: str | None  # the first SKU (in SKU order) that does not exist or lacks the units: nothing held
    refused_quantity: int | None
    unknown: bool  # refused_sku does not exist (rather than lacking units)
    made: list[tuple[uuid.UUID, str, int, str]]  # the reservations inserted: id, sku, quantity, policy


def units_hold_for_order(
    *, order_id: uuid.UUID, lines: list[tuple[str, int]], expires_at: datetime, now: datetime
) -> Hold:
    """Hold an order's units, all lines (distinct SKUs) or none, in one statement."""
    params = {
        "order_id": order_id,
        "skus": [sku for sku, _ in lines],
        "quantities": [quantity for _, quantity in lines],
        "expires_at": expires_at,
        "now": now,
        "held": ReservationStatus.HELD,
        "strict": StockPolicy.STRICT,
    }
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(_HOLD_FOR_ORDER, params)
        held_before, refused_sku, refused_quantity, unknown, made = cursor.fetchone()
    return Hold(
        held_before=held_before,
        refused_sku=refused_sku,
        refused_quantity=refused_quantity,
        unknown=bool(unknown),
        made=[(uuid.UUID(pk), sku, int(quantity), policy) for pk, sku, quantity, policy in made],
    )


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


def units_free(*, sku: str, quantity: int) -> None:
    """Held units go back to the free ones."""
    _execute(_FREE, [quantity, sku])
