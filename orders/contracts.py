"""Messages the orders module sends (v1). Other modules may consume the events."""

from __future__ import annotations

from typing import Final

START_SAGA: Final = "orders.StartSaga"
RESUME_SAGA: Final = "orders.ResumeSaga"
COMPENSATE_ORDER: Final = "orders.CompensateOrder"
ORDER_CONFIRMED: Final = "orders.OrderConfirmed"
ORDER_REJECTED: Final = "orders.OrderRejected"
ORDER_CANCELLED: Final = "orders.OrderCancelled"
ORDER_NEEDS_ATTENTION: Final = "orders.OrderNeedsAttention"
ORDER_SHIPPED: Final = "orders.OrderShipped"
ORDER_DELIVERED: Final = "orders.OrderDelivered"

# Payload of every orders event: {"order_id": str, "customer_id": str (a
# pseudonymous id), "state": str, "reason": str, "total_minor": int,
# "currency": str}. Names and addresses are never in events.
