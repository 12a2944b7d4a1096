"""Orders as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orders.selectors import OrderView

ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK"})


def money(amount_minor: int, currency: str) -> str:
    if currency in ZERO_DECIMAL_CURRENCIES:
        return str(amount_minor)
    sign = "-" if amount_minor < 0 else ""
    whole, cents = divmod(abs(amount_minor), 100)
    return f"{sign}{whole}.{cents:02d}"


def order_body(order: OrderView) -> dict[str, Any]:
    """``order`` as ``orders.selectors.order_for_client`` reads it."""
    return {
        "id": str(order.id),
        "state": order.state,
        "region": order.region,
        "currency": order.currency,
        "customer_id": order.customer_id,
        "lines": [
            {
                "sku": line["sku"],
                "quantity": line["quantity"],
                "unit_price_minor": line["unit_price_minor"],
                "line_total_minor": line["quantity"] * line["unit_price_minor"],
            }
            for line in order.line_rows
        ],
        "subtotal_minor": order.subtotal_minor,
        "tax_minor": order.tax_minor,
        "total_minor": order.total_minor,
        "total": money(order.total_minor, order.currency),
        "failure_reason": order.failure_reason,
        "created_at": order.created_at,
        "history": [
            {
                "from_state": entry["from_state"],
                "to_state": entry["to_state"],
                "reason": entry["reason"],
                "actor": entry["actor"],
                "at": datetime.fromisoformat(entry["at"]),
            }
            for entry in order.history_rows
        ],
    }
