"""Reconciliation: each kind of discrepancy seeded for real by breaking one
module's rows, found exactly, repaired through the saga's own compensations
(or left for a person), stored for the admin, and reported with an exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connections
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.api import set_stock
from inventory.models import Reservation, StockItem
from inventory.services import eventual_sales_settle
from messaging.api import TransientError, dead_letter_resolve, set_fault_profile
from orders.models import Discrepancy, Order, OrdersOutbox, ReconciliationRun
from orders.reconciliation.report import run_report
from orders.reconciliation.runs import RunOptions, reconciliation_run
from orders.saga import saga_compensate, saga_escalate, saga_run
from orders.services.interventions import order_cancel, order_force_compensation, order_mark_resolved
from orders.tasks import reconcile as reconcile_task
from orders.tasks import record_shipped
from payments.models import Authorization, Capture
from shipping.api import get_shipment
from shipping.models import Shipment
from tests.agreement import stock_of, view
from tests.conftest import ROOT, ApiCaller, _test_database_env, order_body

TOTAL = 24_000  # 2 x 100.00 EUR + 20% tax


@pytest.fixture
def place(api_caller: ApiCaller, stock):  # type: ignore[no-untyped-def]
    stock("SKU-1", 5, price=10_000)

    def _place(**kwargs: Any) -> uuid.UUID:
        response = api_caller.place(order_body("SKU-1", kwargs.pop("quantity", 2), **kwargs))
        assert response.status_code == 202, response.content
        return uuid.UUID(response.json()["id"])

    return _place


@pytest.fixture
def confirmed(place):  # type: ignore[no-untyped-def]
    def _confirmed() -> uuid.UUID:
        order_id = place()
        assert saga_run(order_id=order_id) == "confirmed"
        return order_id

    return _confirmed


@pytest.fixture
def staff(db: None):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename="intervene_saga"))
    return get_user_model().objects.get(pk=user.pk)


def paused_in_reservation(place) -> uuid.UUID:  # type: ignore[no-untyped-def]
    """An order whose saga holds stock and waits for an unavailable gateway (its StartSaga was relayed)."""
    order_id = place()
    OrdersOutbox.objects.filter(aggregate_id=str(order_id)).update(published_at=timezone.now())
    set_fault_profile("payment_gateway", timeout_rate=1.0)
    with pytest.raises(TransientError):
        saga_run(order_id=order_id)
    set_fault_profile("payment_gateway")
    return order_id


def reconcile(*args: str) -> tuple[int, ReconciliationRun, str]:
    """Run the command; (exit code, the run it stored, what it printed)."""
    out = StringIO()
    try:
        call_command("reconcile", *args, stdout=out)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return code, ReconciliationRun.objects.order_by("-pk").first(), out.getvalue()  # type: ignore[return-value]


def found(run: ReconciliationRun) -> list[tuple[Any, ...]]:
    return list(
        run.discrepancies.order_by("kind", "sku").values_list(
            "kind", "order_id", "sku", "unit", "expected", "actual", "status"
        )
    )


def kinds(run: ReconciliationRun) -> list[str]:
    return list(run.discrepancies.order_by("kind").values_list("kind", flat=True))


def test_a_clean_database_has_no_discrepancy_and_exits_zero(place, confirmed, api_caller: ApiCaller) -> None:  # type: ignore[no-untyped-def]
    confirmed()
    assert saga_run(order_id=place(token="tok_declined")) == "rejected"
    cancelled = confirmed()
    order_cancel(order_id=cancelled, client_id=api_caller.client_id, actor="client")
    assert saga_compensate(order_id=cancelled) == "cancelled"
    place()  # not started yet: nothing to compare

    code, run, out = reconcile()

    assert (code, run.found, run.unresolved, run.orders_checked, run.status) == (0, 0, 0, 4, "finished")
    assert run.totals["currencies"] == {
        "EUR": {
            "orders": 4,
            "fulfilled_minor": TOTAL,
            "captured_minor": 2 * TOTAL,
            "refunded_minor": TOTAL,
            "net_captured_minor": TOTAL,
            "ledger_sales_minor": TOTAL,
        }
    }
    assert run.totals["orders_by_state"] == {"cancelled": 1, "confirmed": 1, "pending": 1, "rejected": 1}
    assert run.totals["ledger"] == {"debit_minor": 3 * TOTAL, "credit_minor": 3 * TOTAL}
    assert f"run #{run.pk}: 4 orders checked, 0 discrepancies, 0 repaired, 0 unresolved" in out


def test_a_confirmed_order_whose_capture_is_lost_is_left_for_a_person(confirmed) -> None:  # type: ignore[no-untyped-def]
    order_id = confirmed()
    Capture.objects.filter(order_id=order_id).delete()

    code, run, out = reconcile("--fix")

    assert code == 1
    assert found(run) == [("capture_missing", order_id, "", "EUR", TOTAL, 0, "open")]
    d = run.discrepancies.get()
    assert (d.modules, d.repair, d.outcome) == (["orders", "payments"], "", "")
    assert "has no capture of 240.00 EUR" in d.summary
    assert "capture_missing" in out and "Left for a person" in out
    assert Order.objects.get(pk=order_id).state == "confirmed"  # nothing was touched
    assert view(order_id).ledger == (TOTAL, TOTAL)


def test_a_cancelled_order_whose_hold_came_back_is_released(place, api_caller: ApiCaller) -> None:  # type: ignore[no-untyped-def]
    order_id = paused_in_reservation(place)
    order_cancel(order_id=order_id, client_id=api_caller.client_id, actor="client")
    assert saga_compensate(order_id=order_id) == "cancelled"
    # The release never reached inventory: the hold is back, units included.
    Reservation.objects.filter(order_id=order_id).update(status="held")
    StockItem.objects.filter(sku="SKU-1").update(reserved=F("reserved") + 2)

    code, run, _ = reconcile()
    assert (code, found(run)) == (1, [("hold_of_ended_order", order_id, "SKU-1", "units", 0, 2, "open")])
    assert run.discrepancies.get().repair == "release_stock"

    code, run, _ = reconcile("--fix")
    assert (code, found(run)) == (0, [("hold_of_ended_order", order_id, "SKU-1", "units", 0, 2, "repaired")])
    assert run.discrepancies.get().outcome == "release_stock done"
    assert view(order_id).reservations == {"SKU-1": "released"}
    assert stock_of("SKU-1") == (5, 0, 5, 0)

    code, run, _ = reconcile()
    assert (code, run.found) == (0, 0)


def test_an_expired_hold_is_released_and_the_saga_then_compensates(place) -> None:  # type: ignore[no-untyped-def]
    order_id = paused_in_reservation(place)
    Reservation.objects.filter(order_id=order_id).update(expires_at=timezone.now() - timedelta(hours=1))

    code, run, _ = reconcile("--fix")

    assert (code, found(run)) == (0, [("expired_hold", order_id, "SKU-1", "units", 0, 2, "repaired")])
    assert stock_of("SKU-1") == (5, 0, 5, 0)
    assert saga_run(order_id=order_id) == "rejected"  # the lapsed hold cannot be committed
    assert "reservation_lapsed" in Order.objects.get(pk=order_id).failure_reason
    code, run, _ = reconcile()
    assert (code, run.found) == (0, 0)


def test_a_shipment_left_created_for_a_rejected_order_is_cancelled(confirmed, staff) -> None:  # type: ignore[no-untyped-def]
    order_id = confirmed()
    order_force_compensation(order_id=order_id, user=staff, note="goods damaged")
    assert saga_compensate(order_id=order_id) == "rejected"
    Shipment.objects.filter(order_id=order_id).update(status="created")
    shipment_id = get_shipment(order_id=order_id).shipment_id  # type: ignore[union-attr]

    code, run, _ = reconcile()
    assert code == 1
    assert list(run.discrepancies.values_list("kind", "order_id", "reference", "modules", "repair")) == [
        ("shipment_of_ended_order", order_id, shipment_id, ["orders", "shipping"], "cancel_shipment")
    ]

    code, run, _ = reconcile("--fix")
    assert (code, kinds(run), run.repaired) == (0, ["shipment_of_ended_order"], 1)
    assert view(order_id).shipment == "cancelled"
    code, run, _ = reconcile()
    assert (code, run.found) == (0, 0)


def test_a_shipped_parcel_of_a_rejected_order_is_left_for_a_person(confirmed, staff) -> None:  # type: ignore[no-untyped-def]
    order_id = confirmed()
    order_force_compensation(order_id=order_id, user=staff, note="goods damaged")
    assert saga_compensate(order_id=order_id) == "rejected"
    Shipment.objects.filter(order_id=order_id).update(status="shipped")

    code, run, _ = reconcile("--fix")

    assert (code, kinds(run)) == (1, ["shipment_of_ended_order"])
    d = run.discrepancies.get()
    assert (d.status, d.repair) == ("open", "")
    assert "recall it with the carrier" in d.suggested_repair


def test_a_cancellation_settled_by_hand_without_its_refund_is_refunded(confirmed, api_caller, staff) -> None:  # type: ignore[no-untyped-def]
    order_id = confirmed()
    order_cancel(order_id=order_id, client_id=api_caller.client_id, actor="client")
    set_fault_profile("payment_gateway", timeout_rate=1.0)
    with pytest.raises(TransientError):
        saga_compensate(order_id=order_id)
    saga_escalate(order_id=order_id, reason="compensation failed after its retries")
    set_fault_profile("payment_gateway")
    order_mark_resolved(order_id=order_id, user=staff, note="told the customer")  # but nobody refunded
    assert Order.objects.get(pk=order_id).state == "cancelled"

    code, run, _ = reconcile()
    assert code == 1
    assert found(run) == [
        ("capture_not_refunded", order_id, "", "EUR", TOTAL, 0, "open"),
        ("sale_not_returned", order_id, "SKU-1", "units", 0, 2, "open"),
    ]

    code, run, _ = reconcile("--fix")
    assert (code, run.repaired, run.unresolved) == (0, 2, 0)
    assert view(order_id).refunded_minor == TOTAL
    assert view(order_id).ledger == (2 * TOTAL, 2 * TOTAL)
    assert stock_of("SKU-1") == (5, 0, 5, 0)
    code, run, _ = reconcile()
    assert (code, run.found) == (0, 0)


def test_an_open_authorization_of_a_rejected_order_is_voided(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place(token="tok_capture_declined")
    assert saga_run(order_id=order_id) == "rejected"
    Authorization.objects.filter(order_id=order_id).update(status="authorized")

    code, run, _ = reconcile()
    assert (code, found(run)) == (1, [("authorization_open", order_id, "", "EUR", 0, TOTAL, "open")])

    code, run, _ = reconcile("--fix")
    assert (code, run.repaired) == (0, 1)
    assert view(order_id).authorization == "voided"
    code, run, _ = reconcile()
    assert (code, run.found) == (0, 0)


def test_a_saga_past_its_deadline_is_reissued_and_compensates(place) -> None:  # type: ignore[no-untyped-def]
    order_id = paused_in_reservation(place)
    Order.objects.filter(pk=order_id).update(
        deadline_at=timezone.now() - timedelta(minutes=10), updated_at=timezone.now() - timedelta(minutes=11)
    )

    code, run, _ = reconcile()
    assert code == 1
    assert list(run.discrepancies.values_list("kind", "order_id", "unit", "expected", "repair")) == [
        ("saga_past_deadline", order_id, "seconds", 0, "resume_saga")
    ]
    assert 600 <= run.discrepancies.get().actual < 700

    code, run, _ = reconcile("--fix")
    assert (code, kinds(run), run.discrepancies.get().outcome) == (
        0,
        ["saga_past_deadline"],
        "saga re-issued (orders.ResumeSaga)",
    )
    resumed = OrdersOutbox.objects.filter(aggregate_id=str(order_id), message_type="orders.ResumeSaga")
    assert resumed.count() == 1
    assert saga_run(order_id=order_id) == "rejected"  # what the re-issued message makes the worker do
    code, run, _ = reconcile()
    assert (code, run.found) == (0, 0)


def test_a_stale_unpublished_outbox_message_is_published(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    start = OrdersOutbox.objects.get(aggregate_id=str(order_id), message_type="orders.StartSaga")
    OrdersOutbox.objects.filter(pk=start.pk).update(created_at=timezone.now() - timedelta(minutes=10))

    code, run, _ = reconcile()
    assert code == 1
    assert list(run.discrepancies.values_list("kind", "order_id", "reference", "modules", "unit")) == [
        ("outbox_stalled", order_id, str(start.pk), ["orders"], "seconds")
    ]
    assert reconcile("--outbox-age", "900")[1].found == 0  # younger than the threshold

    code, run, _ = reconcile("--fix")
    assert (code, run.repaired, run.discrepancies.get().outcome) == (0, 1, "published")
    assert OrdersOutbox.objects.get(pk=start.pk).published_at is not None
    code, run, _ = reconcile()
    assert (code, run.found) == (0, 0)


def test_a_held_event_is_waiting_on_purpose_until_it_has_been_held_too_long(confirmed) -> None:  # type: ignore[no-untyped-def]
    order_id = confirmed()
    event = OrdersOutbox.objects.get(aggregate_id=str(order_id), message_type="orders.OrderConfirmed")
    ten_minutes_ago = timezone.now() - timedelta(minutes=10)
    OrdersOutbox.objects.filter(pk=event.pk).update(created_at=ten_minutes_ago, held_at=ten_minutes_ago)

    assert reconcile()[1].found == 0  # held while the saga was behind: not a stalled relay

    twenty_minutes_ago = timezone.now() - timedelta(minutes=20)  # over MESSAGING_HELD_STALE_AFTER_S
    OrdersOutbox.objects.filter(pk=event.pk).update(created_at=twenty_minutes_ago, held_at=twenty_minutes_ago)
    code, run, _ = reconcile()
    assert code == 1
    assert list(run.discrepancies.values_list("kind", "order_id", "reference")) == [
        ("outbox_stalled", order_id, str(event.pk))
    ]

    code, run, _ = reconcile("--fix")
    assert (code, run.repaired, run.discrepancies.get().outcome) == (0, 1, "published")
    assert OrdersOutbox.objects.get(pk=event.pk).published_at is not None


def test_the_outbox_admin_tells_held_events_from_stalled_ones(confirmed, client) -> None:  # type: ignore[no-untyped-def]
    order_id = confirmed()
    event = OrdersOutbox.objects.get(aggregate_id=str(order_id), message_type="orders.OrderConfirmed")
    start = OrdersOutbox.objects.get(aggregate_id=str(order_id), message_type="orders.StartSaga")
    OrdersOutbox.objects.filter(pk=event.pk).update(held_at=timezone.now())
    client.force_login(get_user_model().objects.create_superuser("root", password="pw"))

    held = client.get("/admin/orders/ordersoutbox/", {"published_at__isempty": "1", "held_at__isempty": "0"})
    due = client.get("/admin/orders/ordersoutbox/", {"published_at__isempty": "1", "held_at__isempty": "1"})

    assert (held.status_code, due.status_code) == (200, 200)
    assert [str(row.pk) for row in held.context["cl"].result_list] == [str(event.pk)]
    assert [str(row.pk) for row in due.context["cl"].result_list] == [str(start.pk)]
    assert "held at" in held.text.lower()


def test_an_open_dead_letter_is_reported_until_a_person_acts(place) -> None:  # type: ignore[no-untyped-def]
    order_id = place()
    shipped_too_early = {
        "message_id": str(uuid.uuid4()),
        "message_type": "shipping.ShipmentShipped",
        "source": "shipping",
        "aggregate_id": str(order_id),
        "sequence": 2,
        "correlation_id": str(order_id),
        "region": "eu",
        "created_at": timezone.now().isoformat(),
        "payload": {"order_id": str(order_id), "shipment_id": str(uuid.uuid4()), "tracking_number": "T-1"},
    }
    assert record_shipped.apply(args=[shipped_too_early]).get() == "dead_lettered"

    code, run, _ = reconcile("--fix")

    assert code == 1
    d = run.discrepancies.get()
    assert (d.kind, d.order_id, d.modules, d.status, d.repair) == (
        "dead_letter_open",
        order_id,
        ["messaging", "orders", "shipping"],
        "open",
        "",
    )
    assert "orders.record_shipped" in d.summary
    dead_letter_resolve(letter_id=int(d.reference), actor="ops", note="carrier mixed up parcels")
    code, run, _ = reconcile()
    assert (code, run.found) == (0, 0)


def test_stock_sold_is_compared_with_committed_sales_not_with_operators_counts(confirmed) -> None:  # type: ignore[no-untyped-def]
    confirmed()
    set_stock(sku="SKU-1", on_hand=50)  # an operator's count: not derivable, not a discrepancy
    assert reconcile()[1].found == 0

    StockItem.objects.filter(sku="SKU-1").update(sold=F("sold") - 1)  # a sale the stock row lost

    code, run, _ = reconcile("--fix")
    assert (code, found(run)) == (1, [("stock_sold_mismatch", None, "SKU-1", "units", 2, 1, "open")])
    assert run.discrepancies.get().modules == ["inventory"]


def test_eventual_sales_count_as_sold_once_settled(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-E", 10, policy="eventual", price=10_000)
    order_id = uuid.UUID(api_caller.place(order_body("SKU-E", 3)).json()["id"])
    assert saga_run(order_id=order_id) == "confirmed"

    assert reconcile()[1].found == 0  # sold, not yet booked on the stock row
    assert eventual_sales_settle() == {"SKU-E": 3}
    assert reconcile()[1].found == 0
    StockItem.objects.filter(sku="SKU-E").update(sold=0)
    assert found(reconcile()[1]) == [("stock_sold_mismatch", None, "SKU-E", "units", 3, 0, "open")]


def test_scope_limits_the_orders_compared(confirmed) -> None:  # type: ignore[no-untyped-def]
    order_id = confirmed()
    Capture.objects.filter(order_id=order_id).delete()

    assert reconcile("--region", "us")[1].found == 0
    assert reconcile("--since", (timezone.now() + timedelta(minutes=1)).isoformat())[1].found == 0
    _, run, _ = reconcile("--since", "1h", "--region", "eu")
    assert (kinds(run), run.region, run.since is not None) == (["capture_missing"], "eu", True)


def test_json_holds_what_was_stored_and_printed(confirmed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    order_id = confirmed()
    Capture.objects.filter(order_id=order_id).delete()
    target = tmp_path / "reconcile.json"

    code, run, out = reconcile("--json", str(target))

    written = json.loads(target.read_text())
    assert code == 1
    assert written == json.loads(json.dumps(run_report(run)))
    assert written["run"] | {"started_at": None, "finished_at": None} == {
        "id": run.pk,
        "trigger": "command",
        "status": "finished",
        "since": None,
        "region": None,
        "fix": False,
        "started_at": None,
        "finished_at": None,
        "orders_checked": 1,
        "found": 1,
        "repaired": 0,
        "unresolved": 1,
    }
    [d] = written["discrepancies"]
    assert (d["kind"], d["order_id"], d["expected"], d["actual"], d["unit"], d["status"]) == (
        "capture_missing",
        str(order_id),
        TOTAL,
        0,
        "EUR",
        "open",
    )
    assert written["by_kind"] == [
        {"kind": "capture_missing", "modules": ["orders", "payments"], "found": 1, "repaired": 0, "unresolved": 1}
    ]
    assert str(order_id) in out


def test_reads_are_batched_per_page_not_per_order(confirmed) -> None:  # type: ignore[no-untyped-def]
    def queries_per_module() -> dict[str, int]:
        contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in ("inventory", "payments", "shipping")}
        for context in contexts.values():
            context.__enter__()
        reconciliation_run(options=RunOptions(page_size=500))
        for context in contexts.values():
            context.__exit__(None, None, None)
        return {alias: len(context) for alias, context in contexts.items()}

    set_stock(sku="SKU-1", on_hand=100)
    confirmed()
    with_one = queries_per_module()
    for _ in range(4):
        confirmed()

    assert queries_per_module() == with_one
    # Per page: reservations; authorizations, captures, refunds, ledger; shipments. Per run: stock
    # tallies, the ledger's balance, and each module's outbox.
    assert with_one == {"inventory": 1 + 1 + 1, "payments": 4 + 1 + 1, "shipping": 1 + 1}


def test_the_periodic_run_goes_to_the_batch_queue_and_reports_unresolved(confirmed) -> None:  # type: ignore[no-untyped-def]
    Capture.objects.filter(order_id=confirmed()).delete()

    assert reconcile_task.apply().get() == 1

    run = ReconciliationRun.objects.get()
    assert (run.trigger, run.fix, kinds(run)) == ("schedule", False, ["capture_missing"])
    assert settings.CELERY_BEAT_SCHEDULE["reconcile"]["task"] == "orders.reconcile"
    assert settings.CELERY_BEAT_SCHEDULE["reconcile"]["options"] == {"queue": "batch"}


def test_the_admin_shows_runs_and_filters_discrepancies(confirmed, client) -> None:  # type: ignore[no-untyped-def]
    order_id = confirmed()
    Capture.objects.filter(order_id=order_id).delete()
    _, run, _ = reconcile()
    admin = get_user_model().objects.create_superuser("root", password="pw")
    client.force_login(admin)

    page = client.get(f"/admin/orders/reconciliationrun/{run.pk}/change/")
    listing = client.get("/admin/orders/discrepancy/", {"kind__exact": "capture_missing", "module": "payments"})
    elsewhere = client.get("/admin/orders/discrepancy/", {"module": "shipping"})

    assert page.status_code == listing.status_code == 200
    assert "capture_missing" in page.content.decode()
    assert f"/admin/orders/order/{order_id}/change/" in listing.content.decode()
    assert f"/admin/orders/order/{order_id}/change/" not in elsewhere.content.decode()

    resolved = client.post(
        "/admin/orders/discrepancy/",
        {"action": "mark_resolved", "_selected_action": [run.discrepancies.get().pk], "note": "captured by hand"},
    )
    assert resolved.status_code == 302
    d = Discrepancy.objects.get()
    assert (d.status, d.outcome, d.resolved_by) == ("resolved", "captured by hand", "staff:root")


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_process_exit_code_says_whether_something_is_left(confirmed) -> None:  # type: ignore[no-untyped-def]
    order_id = confirmed()

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "reconcile"],
            cwd=ROOT,
            env=_test_database_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    clean = run()
    Capture.objects.filter(order_id=order_id).delete()
    broken = run()

    assert clean.returncode == 0, clean.stderr
    assert (broken.returncode, "capture_missing" in broken.stdout) == (1, True)
    assert "1 discrepancies left unresolved" in broken.stderr
