"""Accepting an order: one statement on the orders alias writes the idempotency
record and, only if its key was new, the order, its lines, its first history
row and the StartSaga message. Either all of it exists or none of it does.

The key is claimed by the INSERT itself (a unique index): a second request with
the same key waits for the first one's statement to commit, then finds its
record and answers what the first answered, without an advisory lock, a
transaction or a read before the write. (So call it outside a transaction: in
one, a repeat would wait for that whole transaction, and two placing the same
two keys in opposite orders would deadlock.)"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from inventory.api import price_lines
from inventory.contracts import LineRequest
from messaging.api import BusinessError, claim_then_insert, outbox_message, rows_where
from orders.contracts import START_SAGA
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


class IdempotencyKeyReused(BusinessError):
    http_status = 422

    def __init__(self) -> None:
        super().__init__("idempotency_key_reused", "this Idempotency-Key was used with a different request body")


def order_place(*, client_id: uuid.UUID, idempotency_key: str, request: OrderRequest, correlation_id: str) -> Placement:
    fingerprint = request.fingerprint()
    try:
        priced = price_lines(
            lines=[LineRequest(sku=sku, quantity=qty) for sku, qty in request.lines], currency=request.currency
        )
    except Exception:  # re-raised below unless this is a repeat
        # A SKU gone (or no longer priced in this currency) since, or inventory unavailable: a repeat of an
        # accepted request still gets its first answer, from the orders module alone.
        replay = _replay(client_id, idempotency_key, fingerprint)
        if replay is None:
            raise
        return replay
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
    # The idempotency record, then the order, its lines, its first history row and the StartSaga message:
    # one statement (the record refers to the order, which Django's deferred foreign keys allow).
    claimed = claim_then_insert(
        IdempotencyRecord(
            client_id=client_id,
            key=idempotency_key,
            request_sha256=fingerprint,
            order=order,
            response_status=202,
            response_body=body,
        ),
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
        ],
    )
    if not claimed:
        replay = _replay(client_id, idempotency_key, fingerprint)
        if replay is None:  # the record's key was taken and is gone again: nothing a client can do about it
            raise RuntimeError(f"idempotency key {idempotency_key!r} was claimed but no record was found")
        return replay
    log.info("order %s accepted", order.id, extra={"order_id": str(order.id), "total_minor": order.total_minor})
    return Placement(order.id, 202, body, replayed=False)


def _replay(client_id: uuid.UUID, key: str, fingerprint: str) -> Placement | None:
    """The first answer to ``key``, if it was used; refused if it was used with another body."""
    found = rows_where(IdempotencyRecord, client_id=client_id, key=key)
    if not found:
        return None
    previous = found[0]
    if previous.request_sha256 != fingerprint:
        raise IdempotencyKeyReused()
    return Placement(previous.order_id, previous.response_status, previous.response_body, replayed=True)
