"""What every module recorded about one order, read through their public faces."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from inventory.api import get_stock_level, reservation_statuses
from orders.models import Order
from payments.api import get_ledger_balance, get_payment_summary
from shipping.api import get_shipment


@dataclass(frozen=True)
class OrderView:
    state: str
    reservations: dict[str, str]
    authorization: str | None
    captures: int
    captured_minor: int
    refunded_minor: int
    ledger: tuple[int, int]
    shipment: str | None


def view(order_id: uuid.UUID | str) -> OrderView:
    oid = uuid.UUID(str(order_id))
    payment = get_payment_summary(order_id=oid)
    shipment = get_shipment(order_id=oid)
    return OrderView(
        state=Order.objects.get(pk=oid).state,
        reservations=reservation_statuses(order_id=oid),
        authorization=payment.authorization_status,
        captures=payment.captures,
        captured_minor=payment.captured_minor,
        refunded_minor=payment.refunded_minor,
        ledger=get_ledger_balance(order_id=oid),
        shipment=shipment.status if shipment else None,
    )


def stock_of(sku: str) -> tuple[int, int, int, int]:
    """(on_hand, reserved, available, sold)"""
    level = get_stock_level(sku=sku)
    return level.on_hand, level.reserved, level.available, level.sold
