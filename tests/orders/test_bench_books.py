"""The benchmark's end-of-run check that fraud's customer history took every confirmed order exactly once."""

from __future__ import annotations

import uuid

from fraud.services import customer_profiles_record_confirmed
from orders.contracts import ORDER_CONFIRMED
from orders.loadgen.consistency import await_history, confirmed_totals, history_problems
from orders.models import OrdersOutbox
from orders.saga import saga_run
from tests.conftest import ApiCaller, order_body


def _confirmed_events(api_caller: ApiCaller, stock, count: int) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """Confirm ``count`` orders; their ``OrderConfirmed`` payloads as fraud's consumer reads them."""
    stock("SKU-1", 100, price=1_000)
    for quantity in range(1, count + 1):
        order_id = uuid.UUID(api_caller.place(order_body("SKU-1", quantity)).json()["id"])
        assert saga_run(order_id=order_id) == "confirmed"
    rows = OrdersOutbox.objects.filter(message_type=ORDER_CONFIRMED).order_by("id")
    return [(row.payload["customer_id"], int(row.payload["total_minor"])) for row in rows]


def test_a_history_that_took_every_confirmed_order_once_agrees(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    events = _confirmed_events(api_caller, stock, 3)
    customer_profiles_record_confirmed(confirmations=events[:2])
    customer_profiles_record_confirmed(confirmations=events[2:])

    assert confirmed_totals() == (3, sum(total for _, total in events))
    assert history_problems() == []
    assert await_history(within_s=5.0, log=lambda line: None) < 1.0


def test_an_event_missing_or_applied_twice_is_a_problem_the_check_names(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    events = _confirmed_events(api_caller, stock, 3)
    customer_profiles_record_confirmed(confirmations=events[:2])

    (missing,) = history_problems()
    assert "counts 2 confirmed orders" in missing
    assert "but 3 were confirmed" in missing
    waited: list[str] = []
    assert await_history(within_s=0.6, every_s=0.2, log=waited.append) >= 0.6
    assert waited and "took" in waited[0]

    customer_profiles_record_confirmed(confirmations=events[2:] * 2)  # the last one applied twice
    (twice,) = history_problems()
    assert "counts 4 confirmed orders" in twice
