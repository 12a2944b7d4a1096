"""Every way the first-version saga can end, run in-process: all modules must agree."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.db import connections
from django.utils import timezone
from django_fsm import ConcurrentTransition

from inventory.models import Reservation
from messaging.api import TransientError, redis_client, set_fault_profile
from orders import saga
from orders.models import CONFIRMATION_STEPS, RESERVATION_STEPS, Order, OrderHistory, OrdersOutbox
from orders.saga import saga_run
from orders.services import transitions
from orders.services.interventions import order_cancel
from payments.gateway import FakePaymentGateway
from payments.models import Authorization
from shipping.carrier import FakeCarrier
from tests.agreement import stock_of, view
from tests.conftest import ApiCaller, order_body
from tests.statements import statements_sent


@pytest.fixture
def place(api_caller: ApiCaller, stock):  # type: ignore[no-untyped-def]
    stock("SKU-1", 5, price=10_000)

    def _place(**kwargs) -> uuid.UUID:  # type: ignore[no-untyped-def]
        response = api_caller.place(order_body("SKU-1", kwargs.pop("quantity", 2), **kwargs))
        assert response.status_code == 202, response.content
        return uuid.UUID(response.json()["id"])

    return _place


def history(order_id: uuid.UUID) -> list[str]:
    return list(OrderHistory.objects.filter(order_id=order_id).values_list("to_state", flat=True))


def test_a_run_reads_the_order_with_its_lines_in_one_statement(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-1", 5)
    stock("SKU-2", 5, policy="eventual")
    body = order_body("SKU-1", 2)
    body["lines"] += [{"sku": "SKU-2", "quantity": 1}, {"sku": "SKU-1", "quantity": 1}]
    order_id = uuid.UUID(api_caller.place(body).json()["id"])

    with statements_sent("orders") as sent:
        assert saga_run(order_id=order_id) == "confirmed"

    assert [sql for sql in sent if "orders_orderline" in sql] == [sent[0]]  # the read with the lock, no other
    held = Reservation.objects.filter(order_id=order_id).values_list("sku", "quantity", "status")
    assert sorted(held) == [("SKU-1", 3, "committed"), ("SKU-2", 1, "committed")]
    assert stock_of("SKU-1")[:2] == (2, 0)


def test_a_first_run_moves_the_order_to_reserving_in_the_read_after_the_lock(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()

    with statements_sent("orders") as sent:
        assert saga_run(order_id=order_id, correlation_id="corr-1") == "confirmed"

    # The lock taken with the move to reserving and the read, one look before each of the three third-party
    # steps, the two transitions that end the phases, the unlock: no separate lock, read or start_reserving.
    assert len(sent) == 7
    assert all(part in sent[0] for part in ("pg_try_advisory_lock", "UPDATE", "orders_orderline"))
    assert "pg_advisory_unlock" in sent[-1]
    started = OrderHistory.objects.filter(order_id=order_id).order_by("id")[1]
    assert (started.from_state, started.to_state, started.actor, started.reason, started.correlation_id) == (
        "pending",
        "reserving",
        "system",
        "",
        "corr-1",
    )
    later = OrderHistory.objects.filter(order_id=order_id).order_by("id")[2]
    assert started.created_at <= later.created_at


def test_a_first_run_looks_for_no_record_before_a_third_party_call(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()

    with statements_sent("payments") as payments, statements_sent("shipping") as shipping:
        assert saga_run(order_id=order_id) == "confirmed"

    # The authorization and the shipment are written without a look first (no step ran before the run that
    # moved the order out of pending); the capture reads the authorization it captures.
    assert [sql.split()[0] for sql in payments] == ["INSERT", "SELECT", "WITH"]
    assert [sql.split()[0] for sql in shipping] == ["INSERT"]
    assert view(order_id).shipment is not None


def test_a_resumed_run_looks_for_the_record_before_the_carrier(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    set_fault_profile("carrier", timeout_rate=1.0)
    with pytest.raises(TransientError):
        saga_run(order_id=order_id)
    set_fault_profile("carrier")

    with (
        statements_sent("shipping") as shipping,
        patch.object(FakeCarrier, "create_label", autospec=True, side_effect=FakeCarrier.create_label) as labels,
    ):
        assert saga_run(order_id=order_id) == "confirmed"

    assert [sql.split()[0] for sql in shipping] == ["SELECT", "INSERT"]
    assert labels.call_count == 1


def unlock(key: str) -> bool:
    with connections["orders"].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 11))", [key])
        return bool(cursor.fetchone()[0])


def start(order_id: uuid.UUID) -> tuple[bool, bool]:
    """Whether order_start_reserving took the lock, and whether it moved the order; the lock let go after."""
    held, moved = transitions.order_start_reserving(order_id=order_id, correlation_id="c", lock_key="k")
    assert unlock("k") == held
    return held, moved is not None


def test_moving_to_reserving_returns_the_order_as_the_saga_reads_it(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place(quantity=3)
    before = Order.objects.get(pk=order_id)

    held, moved = transitions.order_start_reserving(order_id=order_id, correlation_id="c", lock_key="k")
    unlock("k")

    assert held and moved is not None
    assert (moved.state, moved.version) == ("reserving", before.version + 1)
    assert moved.line_pairs == [("SKU-1", 3)]
    assert moved.updated_at > before.updated_at
    stored = Order.objects.get(pk=order_id)
    assert (stored.state, stored.version, stored.updated_at) == ("reserving", moved.version, moved.updated_at)
    # Saved by the copy returned, a later transition is checked against the state and version just written.
    transitions.order_transition(moved, transition="hold_for_review", reason="look")
    assert Order.objects.get(pk=order_id).state == "on_hold"


def test_moving_to_reserving_leaves_alone_an_order_not_pending_or_past_its_deadline(place) -> None:  # type: ignore[no-untyped-def]
    reserving, late = place(), place()
    assert start(reserving) == (True, True)
    Order.objects.filter(pk=late).update(deadline_at=timezone.now() - timedelta(seconds=1))
    rows = OrderHistory.objects.count()

    # The lock is held all the same: the saga then reads the order as it is.
    assert start(reserving) == (True, False)
    assert start(late) == (True, False)
    assert start(uuid.uuid4()) == (True, False)

    assert OrderHistory.objects.count() == rows
    assert Order.objects.get(pk=late).state == "pending"
    # The saga's run finds the late order as it was and compensates it from pending.
    assert saga_run(order_id=late) == "rejected"
    assert history(late)[:2] == ["pending", "compensating"]


def test_happy_path_confirms_and_every_module_agrees(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()

    assert saga_run(order_id=order_id) == "confirmed"

    order = Order.objects.get(pk=order_id)
    assert (order.subtotal_minor, order.tax_minor, order.total_minor) == (20_000, 4_000, 24_000)
    assert view(order_id) == view(order_id).__class__(
        state="confirmed",
        reservations={"SKU-1": "committed"},
        authorization="captured",
        captures=1,
        captured_minor=24_000,
        refunded_minor=0,
        ledger=(24_000, 24_000),
        shipment="created",
    )
    assert stock_of("SKU-1") == (3, 0, 3, 2)
    assert history(order_id) == ["pending", "reserving", "reserved", "confirming", "confirmed"]
    assert order.completed_steps == [*RESERVATION_STEPS, *CONFIRMATION_STEPS]
    confirmed = OrdersOutbox.objects.get(message_type="orders.OrderConfirmed")
    assert confirmed.payload["total_minor"] == 24_000
    assert confirmed.sequence == order.version


def test_running_the_saga_again_changes_nothing(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    saga_run(order_id=order_id)
    before = view(order_id)

    assert saga_run(order_id=order_id) == "confirmed"
    assert view(order_id) == before
    assert stock_of("SKU-1") == (3, 0, 3, 2)


def test_declined_payment_rejects_and_gives_the_stock_back(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place(token="tok_declined")

    assert saga_run(order_id=order_id) == "rejected"

    v = view(order_id)
    assert (v.reservations, v.authorization, v.captures, v.ledger, v.shipment) == (
        {"SKU-1": "released"},
        "declined",
        0,
        (0, 0),
        None,
    )
    assert stock_of("SKU-1") == (5, 0, 5, 0)
    assert history(order_id) == ["pending", "reserving", "compensating", "rejected"]
    assert Order.objects.get(pk=order_id).failure_reason.startswith("payment_declined")


def test_money_captured_after_a_void_is_refunded_and_the_order_rejected(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    capture = FakePaymentGateway.capture

    def void_meanwhile(self, **kwargs):  # type: ignore[no-untyped-def]
        Authorization.objects.filter(order_id=order_id).update(status="voided")  # e.g. a repair
        return capture(self, **kwargs)

    with patch.object(FakePaymentGateway, "capture", void_meanwhile):
        assert saga_run(order_id=order_id) == "rejected"

    v = view(order_id)
    assert (v.captures, v.captured_minor, v.refunded_minor) == (1, 24_000, 24_000)
    assert v.ledger[0] == v.ledger[1]
    assert v.shipment is None
    assert stock_of("SKU-1") == (5, 0, 5, 0)
    assert Order.objects.get(pk=order_id).failure_reason.startswith("captured_after_void")


def test_refused_capture_voids_the_authorization_and_returns_stock(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place(token="tok_capture_declined")

    assert saga_run(order_id=order_id) == "rejected"

    v = view(order_id)
    assert (v.reservations, v.authorization, v.captures, v.ledger, v.shipment) == (
        {"SKU-1": "returned"},
        "voided",
        0,
        (0, 0),
        None,
    )
    assert stock_of("SKU-1") == (5, 0, 5, 0)


def test_failure_after_capture_refunds_it(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place(country="AQ")  # the carrier does not serve it

    assert saga_run(order_id=order_id) == "rejected"

    v = view(order_id)
    assert (v.reservations, v.authorization, v.captures, v.captured_minor, v.refunded_minor, v.shipment) == (
        {"SKU-1": "returned"},
        "refunded",
        1,
        24_000,
        24_000,
        None,
    )
    assert v.ledger == (48_000, 48_000)  # capture and its reversal
    assert stock_of("SKU-1") == (5, 0, 5, 0)


def test_out_of_stock_rejects_without_holding_or_charging(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place(quantity=6)

    assert saga_run(order_id=order_id) == "rejected"

    v = view(order_id)
    assert (v.reservations, v.authorization, v.captures) == ({}, None, 0)
    assert stock_of("SKU-1") == (5, 0, 5, 0)
    assert "out_of_stock" in Order.objects.get(pk=order_id).failure_reason


def test_denied_destination_rejects_before_anything_is_held(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place(country="KP")

    assert saga_run(order_id=order_id) == "rejected"

    v = view(order_id)
    assert (v.reservations, v.authorization, v.shipment) == ({}, None, None)
    assert "destination_denied" in Order.objects.get(pk=order_id).failure_reason


def test_fraud_review_rests_on_hold(place, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-1", 100, price=150_000)
    order_id = place(quantity=2, country="US")  # large amount + shipping outside the region → review

    assert saga_run(order_id=order_id) == "on_hold"
    assert view(order_id).reservations == {}


def test_gateway_outage_pauses_the_saga_then_it_completes(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    set_fault_profile("payment_gateway", timeout_rate=1.0)

    with pytest.raises(TransientError):
        saga_run(order_id=order_id)

    order = Order.objects.get(pk=order_id)
    assert order.state == "reserving"
    assert "authorize_payment" not in order.completed_steps
    assert stock_of("SKU-1") == (5, 2, 3, 0)  # still held while paused

    set_fault_profile("payment_gateway")
    assert saga_run(order_id=order_id) == "confirmed"
    assert view(order_id).captures == 1


def test_a_phase_s_steps_are_recorded_by_the_transition_that_ends_it(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    recorded: list[tuple[str, list[str]]] = []
    record_step, transition = transitions.order_record_step, transitions.order_transition

    def spy_record(order, *, steps, fields=None):  # type: ignore[no-untyped-def]
        recorded.append(("record", list(steps)))
        return record_step(order, steps=steps, fields=fields)

    def spy_transition(order, **kwargs):  # type: ignore[no-untyped-def]
        before = list(order.completed_steps)
        after = transition(order, **kwargs)
        recorded.append((f"transition {kwargs['transition']}", after.completed_steps[len(before) :]))
        return after

    with patch.object(saga, "order_record_step", spy_record), patch.object(saga, "order_transition", spy_transition):
        assert saga.saga_run(order_id=order_id) == "confirmed"

    # One write per phase: no step is recorded on its own when nothing pauses the saga (the move to reserving
    # is made by the run's first read, order_start_reserving).
    assert recorded == [
        ("transition ('mark_reserved', 'start_confirming')", list(RESERVATION_STEPS)),
        ("transition confirm", list(CONFIRMATION_STEPS)),
    ]
    assert Order.objects.get(pk=order_id).completed_steps == [*RESERVATION_STEPS, *CONFIRMATION_STEPS]
    assert Order.objects.get(pk=order_id).tax_minor > 0  # a step's output was kept


@pytest.mark.parametrize(
    ("cancelled_during", "not_called"),
    [("reserve_stock", "authorize"), ("commit_stock", "capture"), ("capture_payment", "create_label")],
)
def test_an_order_cancelled_mid_phase_gets_no_further_third_party_call(  # type: ignore[no-untyped-def]
    place, api_caller: ApiCaller, cancelled_during: str, not_called: str
) -> None:
    order_id = place()
    step = saga.STEPS[cancelled_during]
    phase = "RESERVATION" if step in saga.RESERVATION else "CONFIRMATION"

    def run_then_cancel(order, first_run):  # type: ignore[no-untyped-def]
        produced = step.run(order, first_run)
        order_cancel(order_id=order.id, client_id=api_caller.client_id, actor="customer")
        return produced

    labels: list[str] = []
    create_label = FakeCarrier.create_label

    def counted_label(self, **kwargs):  # type: ignore[no-untyped-def]
        labels.append(kwargs["idempotency_key"])
        return create_label(self, **kwargs)

    swapped = tuple(replace(s, run=run_then_cancel) if s is step else s for s in getattr(saga, phase))
    with patch.object(saga, phase, swapped), patch.object(FakeCarrier, "create_label", counted_label):
        with pytest.raises(ConcurrentTransition):
            saga_run(order_id=order_id)
        gateway_calls = {op for op in ("authorize", "capture") if redis_client().exists(f"fakegw:{order_id}:{op}")}
        assert not_called not in {*gateway_calls, *("create_label" for _ in labels)}

        assert saga_run(order_id=order_id) == "cancelled"
    v = view(order_id)
    assert v.captured_minor == v.refunded_minor
    assert v.shipment in (None, "cancelled")
    assert set(v.reservations.values()) <= {"released", "returned"}
    assert stock_of("SKU-1") == (5, 0, 5, 0)


def test_a_business_failure_records_the_steps_done_before_it(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place(token="tok_capture_declined")

    assert saga_run(order_id=order_id) == "rejected"

    order = Order.objects.get(pk=order_id)
    assert order.completed_steps == [*RESERVATION_STEPS, "commit_stock"]  # what the compensation undid
    assert "authorization_expired" in order.failure_reason
