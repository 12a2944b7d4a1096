"""Inventory's periodic jobs (batch queue)."""

from __future__ import annotations

from config.celery import app
from inventory.services import eventual_sales_settle, reservations_expire


@app.task(name="inventory.expire_reservations", acks_late=True)
def expire_reservations() -> int:
    return len(reservations_expire())


@app.task(name="inventory.settle_eventual_sales", acks_late=True)
def settle_eventual_sales() -> int:
    return sum(eventual_sales_settle().values())
