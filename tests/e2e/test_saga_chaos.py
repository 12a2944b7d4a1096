"""Contention and crashes with real processes: oversell never, lose nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections

from inventory.models import Reservation
from orders.models import Order
from orders.saga import STEPS
from orders.services.recovery import orders_recover
from tests.agreement import stock_of, view
from tests.conftest import ApiCaller, Platform, order_body, wait_for_state

pytestmark = pytest.mark.e2e


def test_200_buyers_for_50_units_confirm_exactly_50(platform: Platform, api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("DROP", 50, price=9_900)

    def buy(n: int) -> str:
        try:
            response = api_caller.place(order_body("DROP", 1, customer=f"buyer-{n}"))
            assert response.status_code == 202
            return response.json()["id"]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(buy, range(200)))

    finals = [wait_for_state(order_id, timeout=120) for order_id in ids]
    assert finals.count("confirmed") == 50
    assert finals.count("rejected") == 150
    assert stock_of("DROP") == (0, 0, 0, 50)
    losers = [order_id for order_id, final in zip(ids, finals, strict=True) if final == "rejected"]
    assert not Reservation.objects.filter(order_id__in=losers, status="held").exists()
    assert Order.objects.filter(pk__in=losers, failure_reason__startswith="out_of_stock").count() == 150


CRASHES = [(f"saga.after_step:{name}", "tok_ok", "confirmed") for name in STEPS] + [
    # Crashes in the middle of a compensation (the capture is refused after the stock was committed).
    ("saga.after_undo:commit_stock", "tok_capture_declined", "rejected"),
    ("saga.after_undo:authorize_payment", "tok_capture_declined", "rejected"),
]


@pytest.mark.parametrize(("crash_point", "token", "final"), CRASHES, ids=[c[0] for c in CRASHES])
def test_a_worker_killed_at_any_step_is_recovered(  # type: ignore[no-untyped-def]
    platform: Platform, api_caller: ApiCaller, stock, crash_point: str, token: str, final: str
) -> None:
    stock("SKU-1", 10, price=1_000)
    Platform.stop(platform.worker)
    doomed = platform.start_worker(CRASH_POINTS=crash_point)

    order_id = api_caller.place(order_body("SKU-1", 2, token=token)).json()["id"]
    assert doomed.wait(timeout=30) == 137, platform.logs("worker")
    assert Order.objects.get(pk=order_id).state not in {"confirmed", "rejected"}

    platform.start_worker()
    assert orders_recover(stale_after=timedelta(0)) != []

    assert wait_for_state(order_id, timeout=30) == final
    v = view(order_id)
    assert v.captures <= 1
    if final == "confirmed":
        assert (v.reservations, v.authorization, v.captures, v.shipment) == (
            {"SKU-1": "committed"},
            "captured",
            1,
            "created",
        )
        assert stock_of("SKU-1") == (8, 0, 8, 2)
    else:
        assert v.authorization in {"voided", "declined"}
        assert v.captures == 0
        assert stock_of("SKU-1") == (10, 0, 10, 0)
    assert v.ledger[0] == v.ledger[1]
