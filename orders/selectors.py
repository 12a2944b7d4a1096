from __future__ import annotations

import uuid

from orders.models import Order


def order_for_client(*, order_id: uuid.UUID, client_id: uuid.UUID) -> Order | None:
    return Order.objects.filter(pk=order_id, client_id=client_id).prefetch_related("lines", "history").first()


def order_state(*, order_id: uuid.UUID) -> str | None:
    return Order.objects.filter(pk=order_id).values_list("state", flat=True).first()
