"""REST → outbox → relay → Celery worker → saga, with real processes."""

from __future__ import annotations

import time

import pytest

from fraud.models import CustomerProfile
from messaging.api import queue_wait
from orders.contracts import START_SAGA
from orders.models import OrdersOutbox
from tests.agreement import stock_of, view
from tests.conftest import ApiCaller, Platform, order_body, wait_for_state

pytestmark = pytest.mark.e2e


def test_an_order_travels_to_confirmed(platform: Platform, api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-1", 10, price=1_000)

    response = api_caller.place(order_body("SKU-1", 3, customer="cust-e2e"))
    assert response.status_code == 202
    order_id = response.json()["id"]

    assert wait_for_state(order_id) == "confirmed", platform.logs("worker")
    v = view(order_id)
    assert (v.reservations, v.authorization, v.captures, v.captured_minor, v.shipment) == (
        {"SKU-1": "committed"},
        "captured",
        1,
        3_600,
        "created",
    )
    assert stock_of("SKU-1") == (7, 0, 7, 3)
    assert api_caller.get(f"/api/v1/orders/{order_id}").json()["state"] == "confirmed"

    # The OrderConfirmed event reaches fraud's consumer through the same relay.
    deadline = time.monotonic() + 10
    while not CustomerProfile.objects.filter(customer_id="cust-e2e").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    profile = CustomerProfile.objects.get(customer_id="cust-e2e")
    assert (profile.confirmed_orders, profile.confirmed_amount_minor) == (1, 3_600)
    assert OrdersOutbox.objects.filter(published_at__isnull=True).count() == 0

    # The worker counted the saga's message off its region's queue, for the admission gate's drain rate.
    deadline = time.monotonic() + 10
    while queue_wait(START_SAGA, "eu").taken != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (queue_wait(START_SAGA, "eu").taken, queue_wait(START_SAGA, "us").taken) == (1, 0)


def test_declined_payment_ends_rejected_with_stock_back(platform: Platform, api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-1", 10)

    order_id = api_caller.place(order_body("SKU-1", 4, token="tok_declined")).json()["id"]

    assert wait_for_state(order_id) == "rejected"
    v = view(order_id)
    assert (v.reservations, v.authorization, v.captures) == ({"SKU-1": "released"}, "declined", 0)
    assert stock_of("SKU-1") == (10, 0, 10, 0)


def test_prefer_wait_returns_the_outcome(platform: Platform, api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-1", 10)

    started = time.monotonic()
    response = api_caller.place(order_body("SKU-1"), wait=5)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json()["state"] == "confirmed"
    assert elapsed < 5
