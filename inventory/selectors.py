from __future__ import annotations

import uuid
from collections.abc import Collection

from django.db import connections
from django.db.models import Sum

from inventory.contracts import (
    LineRequest,
    NoPriceInCurrency,
    PricedLine,
    ReservationRecord,
    StockLevel,
    StockTally,
    UnknownSku,
)
from inventory.models import Reservation, ReservationStatus, StockItem, StockPolicy
from messaging.api import rows_where


def stock_level(*, sku: str) -> StockLevel:
    item = StockItem.objects.filter(sku=sku).first()
    if item is None:
        raise UnknownSku(sku)
    unsettled = 0
    if item.policy == StockPolicy.EVENTUAL:
        unsettled = (
            Reservation.objects.filter(
                sku=sku, policy=StockPolicy.EVENTUAL, status=ReservationStatus.COMMITTED, settled_at__isnull=True
            ).aggregate(total=Sum("quantity"))["total"]
            or 0
        )
    # Sales of EVENTUAL items not yet booked on the row count as sold already.
    on_hand = item.on_hand - unsettled
    return StockLevel(
        sku=item.sku,
        name=item.name,
        policy=item.policy,
        on_hand=on_hand,
        reserved=item.reserved,
        available=on_hand - item.reserved,
        sold=item.sold + unsettled,
        backordered=max(0, -on_hand),
        unsettled=unsettled,
    )


def lines_priced(*, lines: list[LineRequest], currency: str) -> list[PricedLine]:
    items = {item.sku: item for item in rows_where(StockItem, sku__in=[line.sku for line in lines])}
    priced = []
    for line in lines:
        item = items.get(line.sku)
        if item is None:
            raise UnknownSku(line.sku)
        price = item.prices.get(currency.upper())
        if price is None:
            raise NoPriceInCurrency(line.sku, currency)
        priced.append(PricedLine(sku=line.sku, quantity=line.quantity, unit_price_minor=int(price)))
    return priced


def reservations_of(*, order_id: uuid.UUID) -> dict[str, str]:
    """sku → reservation status for one order."""
    return dict(Reservation.objects.filter(order_id=order_id).values_list("sku", "status"))


def reservations_by_order(*, order_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[ReservationRecord]]:
    """order id → its reservations (orders without any are left out), in one query."""
    found: dict[uuid.UUID, list[ReservationRecord]] = {}
    rows = (
        Reservation.objects.filter(order_id__in=list(order_ids))
        .order_by("order_id", "sku")
        .values_list("order_id", "sku", "quantity", "policy", "status", "expires_at")
    )
    for order_id, sku, quantity, policy, status, expires_at in rows:
        found.setdefault(order_id, []).append(
            ReservationRecord(sku=sku, quantity=quantity, policy=policy, status=status, expires_at=expires_at)
        )
    return found


def stock_tallies() -> list[StockTally]:
    """Every stock row's ``sold`` and ``reserved`` beside the sums its reservations imply.

    A STRICT reservation adds to ``reserved`` while held and moves to ``sold``
    when committed; an EVENTUAL one adds to ``sold`` once its sale is settled.
    Returned and released reservations count for nothing. The policy that
    counts is the reservation's own (an item's policy may change later). One
    statement, so rows and reservations are read from the same snapshot.
    """
    sql = f"""
        SELECT s.sku, s.policy, s.sold, s.reserved, COALESCE(r.sold, 0), COALESCE(r.reserved, 0)
        FROM {StockItem._meta.db_table} s
        LEFT JOIN (
            SELECT sku,
                SUM(quantity) FILTER (WHERE status = %(committed)s
                    AND (policy = %(strict)s OR settled_at IS NOT NULL)) AS sold,
                SUM(quantity) FILTER (WHERE status = %(held)s AND policy = %(strict)s) AS reserved
            FROM {Reservation._meta.db_table}
            WHERE status IN (%(held)s, %(committed)s)
            GROUP BY sku
        ) r ON r.sku = s.sku
        ORDER BY s.sku
    """
    params = {"held": ReservationStatus.HELD, "committed": ReservationStatus.COMMITTED, "strict": StockPolicy.STRICT}
    with connections[StockItem.objects.db].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        StockTally(
            sku=sku,
            policy=policy,
            sold=sold,
            reserved=reserved,
            sold_by_reservations=sold_by_reservations,
            reserved_by_reservations=reserved_by_reservations,
        )
        for sku, policy, sold, reserved, sold_by_reservations, reserved_by_reservations in rows
    ]
