"""Writes to stock and reservations. Every change is one conditional UPDATE:
nothing is read in Python and written back (no check-then-act)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from inventory.contracts import RESERVATION_EXPIRED, LineRequest, OutOfStock, ReservationLapsed, UnknownSku
from inventory.counters import units_free, units_hold_for_order, units_sell_for_order
from inventory.metrics import RESERVATIONS_EXPIRED
from inventory.models import InventoryOutbox, Reservation, ReservationStatus, StockItem, StockPolicy
from messaging.api import atomic_on, outbox_append, rows_where

atomic = atomic_on("inventory")


def stock_set(
    *, sku: str, on_hand: int, policy: str | None = None, name: str | None = None, prices: dict[str, int] | None = None
) -> StockItem:
    """Create an item or set its on-hand count (reserved units stay reserved)."""
    if on_hand < 0:
        raise ValueError("on_hand must be >= 0")
    with atomic():
        item, _ = StockItem.objects.select_for_update().get_or_create(
            sku=sku, defaults={"policy": policy or StockPolicy.STRICT, "name": name or sku}
        )
        item.on_hand = on_hand
        if policy:
            item.policy = policy
        if name:
            item.name = name
        if prices is not None:
            item.prices = {currency.upper(): int(amount) for currency, amount in prices.items()}
        item.save()
    return item


def _merge(lines: list[LineRequest]) -> list[tuple[str, int]]:
    merged: dict[str, int] = {}
    for line in lines:
        merged[line.sku] = merged.get(line.sku, 0) + line.quantity
    # A stable order of locks across concurrent reservations: no deadlocks.
    return sorted(merged.items())


def reservation_hold(*, order_id: uuid.UUID, lines: list[LineRequest], ttl: timedelta) -> list[Reservation]:
    """Hold stock for an order; all lines or none. Idempotent per order. One statement, one commit."""
    now = timezone.now()
    expires_at = now + ttl
    hold = units_hold_for_order(order_id=order_id, lines=_merge(lines), expires_at=expires_at, now=now)
    if hold.held_before:
        return rows_where(Reservation, order_id=order_id)
    if hold.refused_sku is not None:
        if hold.unknown:
            raise UnknownSku(hold.refused_sku)
        raise OutOfStock(hold.refused_sku, hold.refused_quantity or 0)
    return [
        Reservation(
            id=pk,
            order_id=order_id,
            sku=sku,
            quantity=quantity,
            policy=policy,
            expires_at=expires_at,
            created_at=now,
            updated_at=now,
        )
        for pk, sku, quantity, policy in hold.made
    ]


def _held(order_id: uuid.UUID, status: str) -> list[Reservation]:
    return list(Reservation.objects.select_for_update().filter(order_id=order_id, status=status).order_by("sku"))


def reservation_commit(*, order_id: uuid.UUID) -> int:
    """Turn an order's held units into sold ones. Idempotent; returns lines committed.

    Refuses when a hold has lapsed (expired and released): the units may be
    someone else's by now.
    """
    sale = units_sell_for_order(order_id=order_id, now=timezone.now())
    if not sale.reservations:
        raise ReservationLapsed(str(order_id), "no reservation")
    if sale.lapsed:
        raise ReservationLapsed(str(order_id), ", ".join(sale.lapsed))
    return sale.committed


def _release(held: list[Reservation]) -> None:
    for r in held:
        if r.policy == StockPolicy.STRICT:
            units_free(sku=r.sku, quantity=r.quantity)
    Reservation.objects.filter(pk__in=[r.pk for r in held]).update(status=ReservationStatus.RELEASED)


def reservation_release(*, order_id: uuid.UUID) -> int:
    """Give back what an order holds and has not committed. Idempotent."""
    with atomic():
        held = _held(order_id, ReservationStatus.HELD)
        _release(held)
        return len(held)


def reservations_expire(*, now: datetime | None = None, limit: int = 500) -> list[uuid.UUID]:
    """Release holds past their expiry and announce each order's lapse (for its saga)."""
    now = now or timezone.now()
    order_ids = list(
        Reservation.objects.filter(status=ReservationStatus.HELD, expires_at__lt=now)
        .values_list("order_id", flat=True)
        .distinct()[:limit]
    )
    expired = []
    for order_id in order_ids:
        with atomic():
            held = [r for r in _held(order_id, ReservationStatus.HELD) if r.expires_at < now]
            if not held:
                continue
            _release(held)
            for r in held:
                RESERVATIONS_EXPIRED.labels(sku=r.sku).inc()
            outbox_append(
                model=InventoryOutbox,
                message_type=RESERVATION_EXPIRED,
                aggregate_id=str(order_id),
                sequence=1,
                correlation_id=str(order_id),
                payload={"order_id": str(order_id), "skus": [r.sku for r in held]},
            )
            expired.append(order_id)
    return expired


def reservation_return(*, order_id: uuid.UUID) -> int:
    """Undo a commit: sold units go back on hand (an order compensated after commit)."""
    with atomic():
        committed = _held(order_id, ReservationStatus.COMMITTED)
        for r in committed:
            if r.policy == StockPolicy.STRICT or r.settled_at is not None:
                StockItem.objects.filter(sku=r.sku).update(
                    on_hand=F("on_hand") + r.quantity, sold=F("sold") - r.quantity
                )
        Reservation.objects.filter(pk__in=[r.pk for r in committed]).update(
            status=ReservationStatus.RETURNED, settled_at=Coalesce(F("settled_at"), Now())
        )
        return len(committed)


def eventual_sales_settle(*, batch: int = 5000) -> dict[str, int]:
    """Book committed EVENTUAL sales against their stock rows, one UPDATE per SKU.

    A stock row that goes below zero is a shortfall: those units are
    back-ordered (``backordered`` on the stock level) until stock arrives.
    """
    settled: dict[str, int] = {}
    with atomic():
        pending = list(
            Reservation.objects.select_for_update(skip_locked=True)
            .filter(policy=StockPolicy.EVENTUAL, status=ReservationStatus.COMMITTED, settled_at__isnull=True)
            .order_by("sku", "pk")
            .values_list("pk", "sku", "quantity")[:batch]
        )
        for _, sku, quantity in pending:
            settled[sku] = settled.get(sku, 0) + quantity
        for sku, quantity in sorted(settled.items()):
            StockItem.objects.filter(sku=sku).update(on_hand=F("on_hand") - quantity, sold=F("sold") + quantity)
        Reservation.objects.filter(pk__in=[pk for pk, _, _ in pending]).update(settled_at=Now())
    return settled
