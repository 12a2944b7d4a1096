"""Orders the platform lost or left moving, read from the orders module's own tables."""

from __future__ import annotations

import uuid

from orders.models import RESTING_STATES, Order

CHUNK = 5000


def lost_orders(accepted_ids: list[str]) -> int:
    """Orders the API accepted that the database does not have."""
    missing = 0
    for start in range(0, len(accepted_ids), CHUNK):
        ids = {uuid.UUID(value) for value in accepted_ids[start : start + CHUNK]}
        missing += len(ids) - Order.objects.filter(pk__in=ids).count()
    return missing


def stuck_orders() -> int:
    """Orders not resting anywhere (neither final nor waiting for a person)."""
    return Order.objects.exclude(state__in=RESTING_STATES).count()
