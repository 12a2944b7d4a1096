"""What inventory accepts and answers (v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict

from messaging.contracts import BusinessError

# Event: a hold lapsed and its units went back to stock. Payload:
# {"order_id": str, "skus": [str]}.
RESERVATION_EXPIRED: Final = "inventory.ReservationExpired"


class LineRequest(BaseModel):
    model_config = ConfigDict(frozen=True)
    sku: str
    quantity: int


class PricedLine(BaseModel):
    model_config = ConfigDict(frozen=True)
    sku: str
    quantity: int
    unit_price_minor: int


class StockLevel(BaseModel):
    model_config = ConfigDict(frozen=True)
    sku: str
    name: str
    policy: str
    on_hand: int
    reserved: int
    available: int
    sold: int
    backordered: int = 0
    unsettled: int = 0


class UnknownSku(BusinessError):
    def __init__(self, sku: str) -> None:
        super().__init__("unknown_sku", f"unknown SKU {sku!r}")


class NoPriceInCurrency(BusinessError):
    def __init__(self, sku: str, currency: str) -> None:
        super().__init__("no_price", f"SKU {sku!r} has no price in {currency}")


class OutOfStock(BusinessError):
    def __init__(self, sku: str, quantity: int) -> None:
        super().__init__("out_of_stock", f"not enough stock of {sku!r} for {quantity}")


class ReservationLapsed(BusinessError):
    def __init__(self, order_id: str, skus: str) -> None:
        super().__init__("reservation_lapsed", f"the stock hold of order {order_id} lapsed ({skus})")


class ReservationRecord(BaseModel):
    """One reservation of an order, as inventory recorded it."""

    model_config = ConfigDict(frozen=True)
    sku: str
    quantity: int
    policy: str
    status: str
    expires_at: datetime


class StockTally(BaseModel):
    """A stock row's counters beside what its reservations say they must be.

    ``on_hand`` is left out: operators set it, so it cannot be derived.
    """

    model_config = ConfigDict(frozen=True)
    sku: str
    policy: str
    sold: int
    reserved: int
    sold_by_reservations: int
    reserved_by_reservations: int
