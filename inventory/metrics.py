"""Prometheus metrics of inventory."""

from __future__ import annotations

from prometheus_client import Counter

RESERVATIONS_EXPIRED = Counter(
    "inventory_reservations_expired_total", "Stock holds released because they expired", ["sku"]
)
