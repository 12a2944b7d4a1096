"""Inventory's face to other modules: keyword-only, typed, idempotent per order."""

from __future__ import annotations

import uuid
from datetime import timedelta

from inventory import selectors, services
from inventory.contracts import LineRequest, PricedLine, ReservationRecord, StockLevel, StockTally


def price_lines(*, lines: list[LineRequest], currency: str) -> list[PricedLine]:
    return selectors.lines_priced(lines=lines, currency=currency)


def get_stock_level(*, sku: str) -> StockLevel:
    return selectors.stock_level(sku=sku)


def set_stock(
    *, sku: str, on_hand: int, policy: str | None = None, name: str | None = None, prices: dict[str, int] | None = None
) -> StockLevel:
    services.stock_set(sku=sku, on_hand=on_hand, policy=policy, name=name, prices=prices)
    return selectors.stock_level(sku=sku)


def reserve_stock(*, order_id: uuid.UUID, lines: list[LineRequest], ttl: timedelta) -> None:
    services.reservation_hold(order_id=order_id, lines=lines, ttl=ttl)


def commit_stock(*, order_id: uuid.UUID) -> None:
    services.reservation_commit(order_id=order_id)


def release_stock(*, order_id: uuid.UUID) -> None:
    services.reservation_release(order_id=order_id)


def return_stock(*, order_id: uuid.UUID) -> None:
    services.reservation_return(order_id=order_id)


def reservation_statuses(*, order_id: uuid.UUID) -> dict[str, str]:
    return selectors.reservations_of(order_id=order_id)


def expire_reservations(*, limit: int = 500) -> list[uuid.UUID]:
    return services.reservations_expire(limit=limit)


def get_reservations(*, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[ReservationRecord]]:
    return selectors.reservations_by_order(order_ids=order_ids)


def get_stock_tallies() -> list[StockTally]:
    return selectors.stock_tallies()
