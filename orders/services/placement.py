"""Accepting an order: one transaction on the orders alias writes the order,
its lines, its first history row, the idempotency record and the StartSaga
message. Either all of it exists or none of it does."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from inventory.api import price_lines
from inventory.contracts import LineRequest
from messaging.api import BusinessError, insert_rows, outbox_message, rows_where
from orders.contracts import START_SAGA
from orders.db import ALIAS, atomic
from orders.models import IdempotencyRecord, Order, OrderHistory, OrderLine, OrdersOutbox, OrderState

log = logging.getLogger("orders.placement")


@dataclass(frozen=True)
class OrderRequest:
    customer_id: str
    region: str
    currency: str
    lines: list[tuple[str, int]]
    payment_token: str
    shipping_address: dict[str, Any]

    def fingerprint(self) -> str:
        canonical = json.dumps(
            {
                "customer_id": self.customer_id,
                "region": self.region,
                "currency": self.currency,
                "lines": [list(line) for line in self.lines],
                "payment_token": self.payment_token,
                "shipping_address": self.shipping_address,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Placement:
    order_id: uuid.UUID
    status: int
    body: dict[str, Any]
    replayed: bool


class IdempotencyKeyInFlight(BusinessError):
    http_status = 409

    def __init__(self) -> None:
        super().__init__("idempotency_key_in_flight", "a request with this Idempotency-Key is still being processed")


class IdempotencyKeyReused(BusinessError):
    http_status = 422

    def __init__(self) -> None:
        super().__init__("idempotency_key_reused", "this Idempotency-Key was used with a different request body")


def _lock_key(client_id: uuid.UUID, key: str) -> None:
    """Hold (client, key) for this transaction, or refuse at once with 409."""
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 7))", [f"{client_id}:{key}"])
        (acquired,) = cursor.fetchone()
    if not acquired:
        raise IdempotencyKeyInFlight()


def order_place(*, client_id: uuid.UUID, idempotency_key: str, request: OrderRequest, correlation_id: str) -> Placement:
    fingerprint = request.fingerprint()
    with atomic():
        _lock_key(client_id, idempotency_key)
        found = rows_where(IdempotencyRecord, client_id=client_id, key=idempotency_key)
        if found:
            previous = found[0]
            if previous.request_sha256 != fingerprint:
                raise IdempotencyKeyReused()
            return Placement(previous.order_id, previous.response_status, previous.response_body, replayed=True)

        priced = price_lines(
            lines=[LineRequest(sku=sku, quantity=qty) for sku, qty in request.lines], currency=request.currency
        )
        now = timezone.now()
        order = Order(
            client_id=client_id,
            customer_id=request.customer_id,
            region=request.region,
            currency=request.currency,
            subtotal_minor=sum(p.quantity * p.unit_price_minor for p in priced),
            payment_token=request.payment_token,
            shipping_country=request.shipping_address["country"],
            shipping_address=request.shipping_address,
            deadline_at=now + timedelta(seconds=settings.ORDER_SAGA_DEADLINE_S),
            created_at=now,
        )
        body = {"id": str(order.id), "state": order.state, "url": f"/api/v1/orders/{order.id}"}
        # The order, its lines, its first history row, the StartSaga message and the idempotency record:
        # one statement (the order first, as the rest refer to it).
        insert_rows(
            [
                order,
                *(
                    OrderLine(order=order, sku=p.sku, quantity=p.quantity, unit_price_minor=p.unit_price_minor)
                    for p in priced
                ),
                OrderHistory(
                    order=order,
                    from_state="",
                    to_state=OrderState.PENDING,
                    reason="order accepted",
                    actor=f"client:{client_id}",
                    correlation_id=correlation_id,
                ),
                outbox_message(
                    model=OrdersOutbox,
                    message_type=START_SAGA,
                    aggregate_id=str(order.id),
                    sequence=order.version,
                    region=order.region,
                    correlation_id=correlation_id,
                    payload={"order_id": str(order.id)},
                ),
                IdempotencyRecord(
                    client_id=client_id,
                    key=idempotency_key,
                    request_sha256=fingerprint,
                    order=order,
                    response_status=202,
                    response_body=body,
                ),
            ]
        )
    log.info("order %s accepted", order.id, extra={"order_id": str(order.id), "total_minor": order.total_minor})
    return Placement(order.id, 202, body, replayed=False)
