"""Orders as the API shows them."""

from __future__ import annotations

from typing import Any

from orders.models import Order

ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK"})


def money(amount_minor: int, currency: str) -> str:
    if currency in ZERO_DECIMAL_CURRENCIES:
        return str(amount_minor)
    sign = "-" if amount_minor < 0 else ""
    whole, cents = divmod(abs(amount_minor), 100)
    return f"{sign}{whole}.{cents:02d}"


def order_body(order: Order) -> dict[str, Any]:
    return {
        "id": str(order.id),
        "state": order.state,
        "region": order.region,
        "currency": order.currency,
        "customer_id": order.customer_id,
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "line_total_minor": line.line_total_minor,
            }
            for line in order.lines.all()
        ],
        "subtotal_minor": order.subtotal_minor,
        "tax_minor": order.tax_minor,
        "total_minor": order.total_minor,
        "total": money(order.total_minor, order.currency),
        "failure_reason": order.failure_reason,
        "created_at": order.created_at,
        "history": [
            {
                "from_state": h.from_state,
                "to_state": h.to_state,
                "reason": h.reason,
                "actor": h.actor,
                "at": h.created_at,
            }
            for h in order.history.all()
        ],
    }
