"""Cancellation, fraud review, expiry, deferred and refused compensation,
fulfilment, recovery and deadlines — each ending with every module agreeing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from unittest.mock import patch

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import DataError, connections
from django.utils import timezone

from compliance.models import TaxAssessment
from inventory.services import reservation_commit, reservations_expire
from messaging.api import BusinessError, TransientError, redis_client, set_fault_profile
from messaging.publisher import publish_to
from messaging.relay import envelope_of
from orders import saga
from orders.models import CONFIRMATION_STEPS, Order, OrderHistory, OrdersOutbox
from orders.saga import SagaBusy, saga_compensate, saga_escalate, saga_run
from orders.services.interventions import (
    NotPermitted,
    order_cancel,
    order_mark_resolved,
    order_retry_compensation,
    order_review_approve,
    order_review_decline,
)
from orders.services.recovery import orders_decline_expired_reviews, orders_recover
from orders.tasks import record_delivered, record_shipped
from shipping.api import get_shipment, record_fulfilment_event
from shipping.models import ShippingOutbox
from tests.agreement import OrderView, stock_of, view
from tests.conftest import ApiCaller, order_body

HELD_NOTHING = {"authorization": None, "captures": 0, "shipment": None}


@pytest.fixture
def place(api_caller: ApiCaller, stock):  # type: ignore[no-untyped-def]
    stock("SKU-1", 5, price=10_000)

    def _place(**kwargs) -> uuid.UUID:  # type: ignore[no-untyped-def]
        response = api_caller.place(order_body("SKU-1", kwargs.pop("quantity", 2), **kwargs))
        assert response.status_code == 202, response.content
        return uuid.UUID(response.json()["id"])

    return _place


@pytest.fixture
def staff(db: None):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create_user("reviewer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["review_fraud", "intervene_saga"]))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


def states(order_id: uuid.UUID) -> list[str]:
    return list(OrderHistory.objects.filter(order_id=order_id).values_list("to_state", flat=True))


def messages(order_id: uuid.UUID) -> list[str]:
    return list(OrdersOutbox.objects.filter(aggregate_id=str(order_id)).values_list("message_type", flat=True))


def cancelled_view(reservations: dict[str, str], **payment: object) -> OrderView:
    base = {
        "authorization": None,
        "captures": 0,
        "captured_minor": 0,
        "refunded_minor": 0,
        "ledger": (0, 0),
        "shipment": None,
    }
    return OrderView(state="cancelled", reservations=reservations, **{**base, **payment})  # type: ignore[arg-type]


def test_cancel_before_the_saga_starts(place, api_caller: ApiCaller) -> None:  # type: ignore[no-untyped-def]
    order_id = place()

    first = api_caller.client.post(f"/api/v1/orders/{order_id}/cancel", **api_caller.headers())
    again = api_caller.client.post(f"/api/v1/orders/{order_id}/cancel", **api_caller.headers())

    assert (first.status_code, first.json()["state"]) == (202, "compensating")
    assert (again.status_code, again.json()["state"]) == (202, "compensating")
    assert messages(order_id).count("orders.CompensateOrder") == 1
    assert saga_run(order_id=order_id) == "cancelled"  # the saga finds the cancel and compensates
    assert view(order_id) == cancelled_view({})
    done = api_caller.client.post(f"/api/v1/orders/{order_id}/cancel", **api_caller.headers())
    assert (done.status_code, done.json()["state"]) == (200, "cancelled")
    assert stock_of("SKU-1") == (5, 0, 5, 0)


def test_cancel_a_confirmed_order_refunds_restocks_and_cancels_the_shipment(place, api_caller) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    saga_run(order_id=order_id)

    outcome = order_cancel(order_id=order_id, client_id=api_caller.client_id, actor="client")
    assert outcome.state == "compensating"
    assert saga_compensate(order_id=order_id) == "cancelled"

    assert view(order_id) == cancelled_view(
        {"SKU-1": "returned"},
        authorization="refunded",
        captures=1,
        captured_minor=24_000,
        refunded_minor=24_000,
        ledger=(48_000, 48_000),
        shipment="cancelled",
    )
    assert stock_of("SKU-1") == (5, 0, 5, 0)
    assert states(order_id)[-2:] == ["compensating", "cancelled"]


def test_cancel_is_refused_once_shipped(place, api_caller: ApiCaller) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    saga_run(order_id=order_id)
    _ship(order_id)

    response = api_caller.client.post(f"/api/v1/orders/{order_id}/cancel", **api_caller.headers())

    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "cannot_cancel",
        "detail": "an order that is shipped can no longer be cancelled",
    }
    assert Order.objects.get(pk=order_id).state == "shipped"


def test_cancel_of_another_clients_order_is_not_found(place, other_caller: ApiCaller) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    response = other_caller.client.post(f"/api/v1/orders/{order_id}/cancel", **other_caller.headers())
    assert response.status_code == 404
    assert Order.objects.get(pk=order_id).state == "pending"


def _deliver_shipping_events(order_id: uuid.UUID) -> None:
    for row in ShippingOutbox.objects.filter(aggregate_id=str(order_id), published_at__isnull=True):
        task = record_shipped if row.message_type.endswith("Shipped") else record_delivered
        assert task.apply(args=[envelope_of(row, "shipping")]).get() == "ok"
        ShippingOutbox.objects.filter(pk=row.pk).update(published_at=timezone.now())


def _ship(order_id: uuid.UUID, *events: str) -> None:
    shipment = get_shipment(order_id=order_id)
    assert shipment is not None
    for event in events or ("shipped",):
        record_fulfilment_event(shipment_id=uuid.UUID(shipment.shipment_id), event=event)
    _deliver_shipping_events(order_id)


def test_carrier_events_move_the_order_to_shipped_then_delivered(place, api_caller, db) -> None:  # type: ignore[no-untyped-def]
    from orders.services.clients import api_client_create

    order_id = place()
    saga_run(order_id=order_id)
    shipment_id = get_shipment(order_id=order_id).shipment_id  # type: ignore[union-attr]
    _, carrier_token = api_client_create(name="carrier", role="carrier")
    url = f"/api/v1/shipments/{shipment_id}/events"

    merchant = api_caller.client.post(
        url, {"event": "shipped"}, content_type="application/json", **api_caller.headers()
    )
    assert merchant.status_code == 401  # merchants cannot report fulfilment
    for event in ("shipped", "shipped", "delivered"):
        response = api_caller.client.post(
            url, {"event": event}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {carrier_token}"
        )
        assert response.status_code == 200
        assert response.json()["status"] == event
    _deliver_shipping_events(order_id)

    assert Order.objects.get(pk=order_id).state == "delivered"
    assert states(order_id)[-2:] == ["shipped", "delivered"]
    bad = api_caller.client.post(
        url, {"event": "lost"}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {carrier_token}"
    )
    assert bad.status_code == 422


def test_fraud_review_approved_goes_on_to_confirmed(place, staff) -> None:  # type: ignore[no-untyped-def]
    order_id = place(country="US", quantity=1)  # outside the region
    Order.objects.filter(pk=order_id).update(subtotal_minor=300_000)  # and large → review
    assert saga_run(order_id=order_id) == "on_hold"
    assert Order.objects.get(pk=order_id).completed_steps == [
        "clear_compliance"
    ]  # what was done before the hold was recorded

    outsider = get_user_model().objects.create_user("intern", password="pw", is_staff=True)
    with pytest.raises(NotPermitted):
        order_review_approve(order_id=order_id, user=outsider)
    order_review_approve(order_id=order_id, user=staff, note="called the customer")

    assert messages(order_id)[-1] == "orders.ResumeSaga"
    assert saga_run(order_id=order_id) == "confirmed"
    history = OrderHistory.objects.filter(order_id=order_id, from_state="on_hold").get()
    assert (history.to_state, history.actor) == ("reserving", "staff:reviewer")
    assert "called the customer" in history.reason
    assert view(order_id).captures == 1


def test_fraud_review_declined_and_expired_reviews_end_rejected(place, staff) -> None:  # type: ignore[no-untyped-def]
    declined, expired = place(country="US"), place(country="US")
    Order.objects.filter(pk__in=[declined, expired]).update(subtotal_minor=300_000)
    assert {saga_run(order_id=declined), saga_run(order_id=expired)} == {"on_hold"}

    order_review_decline(order_id=declined, user=staff, note="stolen card")
    Order.objects.filter(pk=expired).update(updated_at=timezone.now() - timedelta(days=2))
    assert orders_decline_expired_reviews(review_timeout=timedelta(days=1)) == [expired]

    for order_id in (declined, expired):
        assert saga_compensate(order_id=order_id) == "rejected"
        assert view(order_id).reservations == {}
    assert "stolen card" in Order.objects.get(pk=declined).failure_reason
    assert "review deadline passed" in Order.objects.get(pk=expired).failure_reason


def test_an_expired_hold_is_released_and_its_order_compensated(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    set_fault_profile("payment_gateway", timeout_rate=1.0)
    with pytest.raises(TransientError):
        saga_run(order_id=order_id)
    assert stock_of("SKU-1") == (5, 2, 3, 0)

    assert reservations_expire(now=timezone.now() + timedelta(days=1)) == [order_id]
    assert stock_of("SKU-1") == (5, 0, 5, 0)
    with pytest.raises(BusinessError, match="lapsed"):
        reservation_commit(order_id=order_id)  # a lapsed hold can never be sold

    from inventory.models import InventoryOutbox
    from orders.tasks import reservation_lapsed

    lapse = InventoryOutbox.objects.get(aggregate_id=str(order_id))
    assert reservation_lapsed.apply(args=[envelope_of(lapse, "inventory")]).get() == "ok"
    set_fault_profile("payment_gateway")
    assert saga_compensate(order_id=order_id) == "rejected"
    assert view(order_id).reservations == {"SKU-1": "released"}
    assert "reservation_lapsed" in Order.objects.get(pk=order_id).failure_reason


def test_compensation_that_keeps_failing_goes_to_a_person_and_can_be_resumed(place, api_caller, staff) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    saga_run(order_id=order_id)
    order_cancel(order_id=order_id, client_id=api_caller.client_id, actor="client")
    set_fault_profile("payment_gateway", timeout_rate=1.0)  # refunds cannot go through

    with pytest.raises(TransientError):
        saga_compensate(order_id=order_id)
    assert saga_escalate(order_id=order_id, reason="compensation failed after its retries") == "needs_attention"
    assert messages(order_id)[-1] == "orders.OrderNeedsAttention"

    set_fault_profile("payment_gateway")
    order_retry_compensation(order_id=order_id, user=staff, note="gateway back")
    assert saga_compensate(order_id=order_id) == "cancelled"
    assert view(order_id).refunded_minor == 24_000
    assert states(order_id)[-4:] == ["compensating", "needs_attention", "compensating", "cancelled"]


def test_a_refused_undo_escalates_and_a_person_resolves_it(place, api_caller, staff) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    saga_run(order_id=order_id)
    order_cancel(order_id=order_id, client_id=api_caller.client_id, actor="client")
    shipment = get_shipment(order_id=order_id)
    record_fulfilment_event(shipment_id=uuid.UUID(shipment.shipment_id), event="shipped")  # type: ignore[union-attr]

    assert saga_compensate(order_id=order_id) == "needs_attention"
    assert "already_shipped" in OrderHistory.objects.filter(order_id=order_id).last().reason  # type: ignore[union-attr]

    with pytest.raises(BusinessError):
        order_mark_resolved(order_id=order_id, user=staff, note=" ")
    order_mark_resolved(order_id=order_id, user=staff, note="parcel recalled, refunded by hand")
    assert Order.objects.get(pk=order_id).state == "cancelled"


def test_recovery_resumes_a_stalled_saga_from_its_last_step(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    set_fault_profile("payment_gateway", timeout_rate=1.0)
    with pytest.raises(TransientError):
        saga_run(order_id=order_id)
    set_fault_profile("payment_gateway")
    steps_before = Order.objects.get(pk=order_id).completed_steps
    Order.objects.filter(pk=order_id).update(updated_at=timezone.now() - timedelta(minutes=5))
    OrdersOutbox.objects.update(published_at=timezone.now())  # relayed, then lost

    assert orders_recover(stale_after=timedelta(minutes=1)) == [(order_id, "orders.ResumeSaga")]
    assert orders_recover(stale_after=timedelta(minutes=1)) == []  # claimed once

    # The steps done before the pause were recorded when it paused.
    assert steps_before == ["clear_compliance", "assess_fraud", "reserve_stock"]
    assert saga_run(order_id=order_id) == "confirmed"
    assert view(order_id).captures == 1


def test_recovery_leaves_alone_an_order_whose_message_the_relay_has_not_sent(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    Order.objects.filter(pk=order_id).update(updated_at=timezone.now() - timedelta(minutes=5))

    assert OrdersOutbox.objects.filter(aggregate_id=str(order_id), published_at__isnull=True).exists()
    assert orders_recover(stale_after=timedelta(minutes=1)) == []


def test_recovery_waits_for_a_saga_queue_that_is_behind(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    stalled_at = timezone.now() - timedelta(minutes=5)
    Order.objects.filter(pk=order_id).update(updated_at=stalled_at)
    OrdersOutbox.objects.update(published_at=timezone.now())
    queue = "saga.eu"
    assert Order.objects.get(pk=order_id).region == "eu"

    publish_to(
        task_name="orders.resume_saga", queue=queue, envelope=waiting_envelope(stalled_at - timedelta(seconds=1))
    )
    assert orders_recover(stale_after=timedelta(minutes=1)) == []  # its message may be behind that one

    redis_client().delete(queue)
    publish_to(
        task_name="orders.resume_saga", queue=queue, envelope=waiting_envelope(stalled_at + timedelta(seconds=1))
    )
    assert orders_recover(stale_after=timedelta(minutes=1)) == [(order_id, "orders.ResumeSaga")]  # it was lost


def waiting_envelope(created_at: datetime) -> dict:
    return {
        "message_id": str(uuid.uuid4()),
        "message_type": "orders.ResumeSaga",
        "version": 1,
        "source": "orders",
        "aggregate_id": str(uuid.uuid4()),
        "sequence": 1,
        "correlation_id": "another order",
        "causation_id": "",
        "region": "eu",
        "created_at": created_at.isoformat(),
        "payload": {},
        "headers": {},
    }


def test_a_saga_past_its_deadline_compensates_instead_of_resuming(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    set_fault_profile("payment_gateway", timeout_rate=1.0)
    with pytest.raises(TransientError):
        saga_run(order_id=order_id)
    set_fault_profile("payment_gateway")
    Order.objects.filter(pk=order_id).update(deadline_at=timezone.now() - timedelta(seconds=1))

    assert saga_run(order_id=order_id) == "rejected"
    assert "deadline" in Order.objects.get(pk=order_id).failure_reason
    assert view(order_id).reservations == {"SKU-1": "released"}
    assert stock_of("SKU-1") == (5, 0, 5, 0)


def test_history_endpoint_is_the_timeline(place, api_caller: ApiCaller) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    saga_run(order_id=order_id)

    body = api_caller.get(f"/api/v1/orders/{order_id}/history").json()

    assert [(h["from_state"], h["to_state"]) for h in body] == [
        ("", "pending"),
        ("pending", "reserving"),
        ("reserving", "reserved"),
        ("reserved", "confirming"),
        ("confirming", "confirmed"),
    ]


def test_recovery_leaves_alone_an_order_a_worker_is_still_driving(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    Order.objects.filter(pk=order_id).update(updated_at=timezone.now() - timedelta(minutes=5))
    OrdersOutbox.objects.update(published_at=timezone.now())
    worker = psycopg.connect(**_libpq_params(), autocommit=True)  # another session: the lock is not re-entrant there
    try:
        worker.execute("SELECT pg_advisory_lock(hashtextextended(%s, 11))", [f"saga:{order_id}"])

        assert orders_recover(stale_after=timedelta(minutes=1)) == []  # a slow phase, not a stall
        assert not OrdersOutbox.objects.filter(aggregate_id=str(order_id), published_at__isnull=True).exists()

        worker.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 11))", [f"saga:{order_id}"])
        assert orders_recover(stale_after=timedelta(minutes=1)) == [(order_id, "orders.ResumeSaga")]
    finally:
        worker.close()

    # The lock is free again: the saga itself can take it.
    assert saga_run(order_id=order_id) == "confirmed"


def test_a_first_run_finds_the_order_driven_elsewhere_and_leaves_it_pending(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    worker = psycopg.connect(**_libpq_params(), autocommit=True)
    try:
        worker.execute("SELECT pg_advisory_lock(hashtextextended(%s, 11))", [f"saga:{order_id}"])

        with pytest.raises(SagaBusy):
            saga_run(order_id=order_id)
        # The statement that would have moved it took no lock, so it moved nothing.
        assert Order.objects.get(pk=order_id).state == "pending"
        assert OrderHistory.objects.filter(order_id=order_id).count() == 1
    finally:
        worker.close()

    assert saga_run(order_id=order_id) == "confirmed"
    assert _free_for_another_session(order_id)  # taken once by the statement that started it, let go once


def _free_for_another_session(order_id: uuid.UUID) -> bool:
    """Whether another session can take the order's saga lock (this one could: a session's locks stack)."""
    worker = psycopg.connect(**_libpq_params(), autocommit=True)
    try:
        row = worker.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 11))", [f"saga:{order_id}"]).fetchone()
        return bool(row and row[0])
    finally:
        worker.close()


def test_a_start_that_fails_lets_the_lock_go(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()

    def fails(*, order_id, correlation_id, lock_key):  # type: ignore[no-untyped-def]
        with connections["orders"].cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 11))", [lock_key])
        raise DataError("the statement failed after it took the lock")

    with patch.object(saga, "order_start_reserving", fails), pytest.raises(DataError):
        saga_run(order_id=order_id)

    assert _free_for_another_session(order_id)


def _libpq_params() -> dict[str, str]:
    """The orders alias's database (the test database, where advisory locks are scoped), for a session of its own."""
    settings_dict = connections["orders"].settings_dict
    return {
        "dbname": settings_dict["NAME"],
        "user": settings_dict["USER"],
        "host": settings_dict["HOST"],
        "port": settings_dict["PORT"],
    }


# --- orders in flight when screening and tax became one step (clear_compliance) ----------------------------


def _as_the_old_steps_left_it(order_id: uuid.UUID, *, steps: list[str], taxed: bool) -> None:
    """Rewrite an order's record as the steps ``screen`` … ``compute_tax`` left it: the old names, and without
    the tax unless ``compute_tax`` had run."""
    Order.objects.filter(pk=order_id).update(completed_steps=steps, **({} if taxed else {"tax_minor": 0}))
    if not taxed:
        TaxAssessment.objects.filter(order_id=order_id).delete()


@pytest.mark.parametrize(
    "steps",
    [["screen", "assess_fraud", "reserve_stock"], ["screen", "assess_fraud", "reserve_stock", "compute_tax"]],
)
def test_an_order_paused_under_the_old_step_names_is_captured_with_its_tax(place, steps: list[str]) -> None:  # type: ignore[no-untyped-def]
    order_id = place()  # 2 x 100.00 in eu: 40.00 of tax
    set_fault_profile("payment_gateway", timeout_rate=1.0)
    with pytest.raises(TransientError):
        saga_run(order_id=order_id)
    set_fault_profile("payment_gateway")
    _as_the_old_steps_left_it(order_id, steps=steps, taxed="compute_tax" in steps)

    assert saga_run(order_id=order_id) == "confirmed"

    order = Order.objects.get(pk=order_id)
    assert (order.tax_minor, view(order_id).captured_minor) == (4_000, 24_000)
    assert TaxAssessment.objects.get(order_id=order_id).tax_minor == 4_000
    assert order.completed_steps == [*steps, "clear_compliance", "authorize_payment", *CONFIRMATION_STEPS]


def test_an_order_held_for_review_under_the_old_step_names_is_taxed_once_approved(place, staff) -> None:  # type: ignore[no-untyped-def]
    order_id = place(country="US", quantity=1)  # outside the region
    Order.objects.filter(pk=order_id).update(subtotal_minor=300_000)  # and large → review
    assert saga_run(order_id=order_id) == "on_hold"
    _as_the_old_steps_left_it(order_id, steps=["screen"], taxed=False)

    order_review_approve(order_id=order_id, user=staff)
    assert saga_run(order_id=order_id) == "confirmed"

    assert (Order.objects.get(pk=order_id).tax_minor, view(order_id).captured_minor) == (60_000, 360_000)
