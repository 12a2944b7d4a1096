"""Inventory's periodic jobs (batch queue)."""

from __future__ import annotations

from config.celery import app
from inventory.services import reservations_expire


@app.task(name="inventory.expire_reservations", acks_late=True)
def expire_reservations() -> int:
    return len(reservations_expire())
