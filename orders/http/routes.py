"""Thin views: parse, call a service or selector, shape the answer."""

from __future__ import annotations

import re
import time
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Header, Query, Router, Status
from ninja.errors import HttpError

from inventory.api import get_stock_level
from inventory.contracts import UnknownSku
from orders.admission import order_answered, order_placed
from orders.http.presenters import order_body
from orders.http.schemas import (
    MAX_ORDERS_PER_LOOKUP,
    ErrorOut,
    HistoryOut,
    OrderAccepted,
    OrderIn,
    OrderOut,
    OrdersOut,
    StockOut,
)
from orders.models import RESTING_STATES
from orders.selectors import order_for_client, order_state, orders_for_client
from orders.services.interventions import order_cancel
from orders.services.placement import OrderRequest, order_place

router = Router(tags=["orders"])
stock_router = Router(tags=["inventory"])

_LOOKUP_IDS = Query(..., alias="id", min_length=1, max_length=MAX_ORDERS_PER_LOOKUP)
_WAIT = re.compile(r"(?:^|[;,\s])wait=(\d+(?:\.\d+)?)")


def _requested_wait(prefer: str | None) -> float:
    match = _WAIT.search(prefer or "")
    return min(float(match.group(1)), settings.ORDER_MAX_WAIT_S) if match else 0.0


def _await_outcome(order_id: uuid.UUID, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    delay = 0.01
    while time.monotonic() < deadline:
        if order_state(order_id=order_id) in RESTING_STATES:
            return True
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)
    return False


@router.post(
    "",
    response={
        200: OrderOut,
        202: OrderAccepted,
        400: ErrorOut,
        401: ErrorOut,
        422: ErrorOut,
        503: ErrorOut,
    },
    summary="Place an order",
    description="Requires `Idempotency-Key`. Send `Prefer: wait=N` (N ≤ 10 s) to wait for the outcome. "
    "503 with `Retry-After` while orders of the region are too far behind: nothing was stored, send it again later.",
)
def place_order(
    request: HttpRequest,
    response: HttpResponse,
    payload: OrderIn,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    prefer: str | None = Header(default=None, alias="Prefer"),
):  # type: ignore[no-untyped-def]
    if not idempotency_key or not idempotency_key.strip():
        raise HttpError(400, "the Idempotency-Key header is required")
    if len(idempotency_key) > 255:
        raise HttpError(400, "the Idempotency-Key header is longer than 255 characters")
    client = request.auth
    placement = order_place(
        client_id=client.id,
        idempotency_key=idempotency_key.strip(),
        request=OrderRequest(
            customer_id=payload.customer_id,
            region=payload.region,
            currency=payload.currency,
            lines=[(line.sku, line.quantity) for line in payload.lines],
            payment_token=payload.payment_token,
            shipping_address={
                **payload.shipping_address.model_dump(exclude_none=True),
                "country": payload.shipping_address.country.upper(),
            },
        ),
        correlation_id=getattr(request, "correlation_id", "") or str(uuid.uuid4()),
    )
    response["Location"] = placement.body["url"]
    if placement.replayed:
        response["Idempotent-Replayed"] = "true"
    if (ticket := getattr(request, "admission_ticket", None)) is not None:
        # A new order is on its way to the saga's queue, counted by the admission gate; a repeat is not, even while
        # it waits for the outcome below.
        (order_answered if placement.replayed else order_placed)(ticket)
    wait = _requested_wait(prefer)
    if wait > 0 and _await_outcome(placement.order_id, wait):
        order = order_for_client(order_id=placement.order_id, client_id=client.id)
        return Status(200, order_body(order))
    return Status(placement.status, placement.body)


@router.get(
    "",
    response={200: OrdersOut, 401: ErrorOut, 422: ErrorOut},
    summary="Several orders at once",
    description=f"`?id=…&id=…`, 1 to {MAX_ORDERS_PER_LOOKUP} ids (repeats count; 100 ids make a URL of about "
    "4 KB): the client's orders among them, each as `GET /orders/{id}` shows it, in the order asked for and "
    "once each; ids the client has no order under are listed in `not_found`. One request where a client "
    "following many orders would send one per order. Without an id: 422 (this is a lookup, not a listing).",
)
def get_orders(request: HttpRequest, ids: list[uuid.UUID] = _LOOKUP_IDS):  # type: ignore[no-untyped-def]
    asked = list(dict.fromkeys(ids))
    found = {order.id: order for order in orders_for_client(order_ids=asked, client_id=request.auth.id)}
    return Status(
        200,
        {
            "orders": [order_body(found[order_id]) for order_id in asked if order_id in found],
            "not_found": [str(order_id) for order_id in asked if order_id not in found],
        },
    )


@router.get("/{order_id}", response={200: OrderOut, 401: ErrorOut, 404: ErrorOut}, summary="An order and its history")
def get_order(request: HttpRequest, order_id: uuid.UUID):  # type: ignore[no-untyped-def]
    order = order_for_client(order_id=order_id, client_id=request.auth.id)
    if order is None:
        raise HttpError(404, "order not found")
    return Status(200, order_body(order))


@router.get(
    "/{order_id}/history", response={200: list[HistoryOut], 401: ErrorOut, 404: ErrorOut}, summary="The timeline"
)
def get_history(request: HttpRequest, order_id: uuid.UUID):  # type: ignore[no-untyped-def]
    order = order_for_client(order_id=order_id, client_id=request.auth.id)
    if order is None:
        raise HttpError(404, "order not found")
    return Status(200, order_body(order)["history"])


@router.post(
    "/{order_id}/cancel",
    response={200: OrderOut, 202: OrderAccepted, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="Cancel an order not yet shipped",
    description="Idempotent. 202 while the order is being compensated, 200 once cancelled (or with "
    "`Prefer: wait=N` when it finished in time), 409 when it has shipped or ended otherwise.",
)
def cancel_order(
    request: HttpRequest,
    order_id: uuid.UUID,
    prefer: str | None = Header(default=None, alias="Prefer"),
):  # type: ignore[no-untyped-def]
    client = request.auth
    outcome = order_cancel(
        order_id=order_id,
        client_id=client.id,
        actor=f"client:{client.id}",
        correlation_id=getattr(request, "correlation_id", ""),
    )
    wait = _requested_wait(prefer)
    if outcome.state == "cancelled" or (wait > 0 and _await_outcome(order_id, wait)):
        return Status(200, order_body(order_for_client(order_id=order_id, client_id=client.id)))
    return Status(202, {"id": str(order_id), "state": outcome.state, "url": f"/api/v1/orders/{order_id}"})


@stock_router.get(
    "/{sku}",
    response={200: StockOut, 401: ErrorOut, 404: ErrorOut, 503: ErrorOut},
    summary="Stock of one SKU",
    description="Paused (503 with `Retry-After`) while orders are behind, to leave the capacity to them.",
)
def get_stock(request: HttpRequest, sku: str):  # type: ignore[no-untyped-def]
    try:
        level = get_stock_level(sku=sku)
    except UnknownSku as exc:
        raise HttpError(404, exc.detail) from exc
    return Status(200, level.model_dump())
