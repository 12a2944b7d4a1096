"""What a check reports, and the facts about one order that the checks read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from inventory.contracts import ReservationRecord
from orders.models import Order
from payments.contracts import PaymentRecord
from shipping.contracts import ShipmentInfo

UNITS = "units"
SECONDS = "seconds"
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW"})


@dataclass(frozen=True)
class OrderFacts:
    """One order beside what inventory, payments and shipping recorded about it."""

    order: Order
    reservations: tuple[ReservationRecord, ...]
    payment: PaymentRecord
    shipment: ShipmentInfo | None


@dataclass(frozen=True)
class Finding:
    """A discrepancy as a check sees it; ``repair`` names the automatic repair, if any is safe."""

    kind: str
    modules: tuple[str, ...]
    summary: str
    suggested_repair: str
    order_id: uuid.UUID | None = None
    sku: str = ""
    reference: str = ""
    unit: str = ""
    expected: int | None = None
    actual: int | None = None
    repair: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, uuid.UUID | None, str, str]:
        return (self.kind, self.order_id, self.sku, self.reference)


def money(amount_minor: int, currency: str | None) -> str:
    code = (currency or "").upper()
    if code in _ZERO_DECIMAL_CURRENCIES:
        return f"{amount_minor} {code}"
    sign = "-" if amount_minor < 0 else ""
    whole, cents = divmod(abs(amount_minor), 100)
    return f"{sign}{whole}.{cents:02d} {code}".rstrip()
