"""The degradation switch with real processes: while a critical queue is behind, a confirmed order's event
waits in the outbox instead of reaching fraud's consumer, and reaches it once the queue has been served."""

from __future__ import annotations

import time

import pytest

from fraud.models import CustomerProfile
from orders.contracts import ORDER_CONFIRMED
from orders.models import OrdersOutbox
from tests.conftest import ApiCaller, Platform, order_body, wait_for_state
from tests.messaging.helpers import eventually

pytestmark = pytest.mark.e2e


def _confirmed_event(order_id: str) -> OrdersOutbox:
    return OrdersOutbox.objects.get(aggregate_id=order_id, message_type=ORDER_CONFIRMED)


def test_a_confirmed_order_s_event_waits_while_another_region_is_behind(  # type: ignore[no-untyped-def]
    platform: Platform, api_caller: ApiCaller, stock
) -> None:
    stock("SKU-1", 10, price=1_000)
    Platform.stop(platform.worker)
    Platform.stop(platform.relay)
    platform.start_relay(MESSAGING_HOLD_EVENTS_LAG_S="0.5", MESSAGING_HOLD_CHECK_EVERY_S="0.1")
    try:
        # Nobody serves saga.us: its order's StartSaga ages there, and the relay sees the saga behind.
        behind = api_caller.place(order_body("SKU-1", region="us", customer="cust-us")).json()["id"]
        time.sleep(1.0)
        platform.start_worker(queues="saga.eu,events")

        served = api_caller.place(order_body("SKU-1", customer="cust-eu")).json()["id"]

        assert wait_for_state(served) == "confirmed", platform.logs("worker")
        # Its event is written held (fraud's consumer takes batches) and would go out within the relay's next
        # release; the switch keeps it in.
        assert _confirmed_event(served).held_at is not None
        time.sleep(2.0)  # a worker on `events` is running: without the switch it would have been applied by now
        assert _confirmed_event(served).published_at is None
        assert not CustomerProfile.objects.filter(customer_id="cust-eu").exists()
        assert "relay: holding back non-critical events" in platform.logs("relay")

        Platform.stop(platform.worker)
        platform.start_worker()  # every queue: the US order is driven and the lag falls

        assert wait_for_state(behind, timeout=30) == "confirmed", platform.logs("worker")
        eventually(lambda: CustomerProfile.objects.filter(customer_id="cust-eu").exists(), timeout=20)
        assert _confirmed_event(served).published_at is not None
        assert CustomerProfile.objects.get(customer_id="cust-eu").confirmed_orders == 1
        eventually(lambda: CustomerProfile.objects.filter(customer_id="cust-us").exists(), timeout=20)
        assert "relay: letting held events go" in platform.logs("relay")
    finally:
        Platform.stop(platform.relay)
        Platform.stop(platform.worker)
        platform.ensure_running()  # the platform's usual relay and worker for the tests after this one
