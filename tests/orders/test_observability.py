"""Metrics an on-call engineer reads, with the right labels after one order;
X-Request-ID carried into the order's messages and log lines."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import pytest
from django.conf import settings
from django.test import Client

from config.logging import structured_formatter
from orders.models import CONFIRMATION_STEPS, RESERVATION_STEPS, OrdersOutbox
from orders.saga import saga_run
from tests.conftest import ApiCaller, order_body


def scrape() -> str:
    response = Client().get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` (labels in any order), 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def confirmed_order(api_caller: ApiCaller, stock) -> uuid.UUID:  # type: ignore[no-untyped-def]
    stock("SKU-1", 5)
    order_id = uuid.UUID(api_caller.place(order_body("SKU-1"), HTTP_X_REQUEST_ID="req-42").json()["id"])
    return order_id


def test_saga_metrics_have_the_right_labels_after_an_order(confirmed_order: uuid.UUID) -> None:
    before = scrape()
    assert saga_run(order_id=confirmed_order) == "confirmed"
    after = scrape()

    for step in ("clear_compliance", "reserve_stock", "authorize_payment", "capture_payment", "create_shipment"):
        delta = value(after, "saga_step_seconds_count", step=step) - value(before, "saga_step_seconds_count", step=step)
        assert delta == 1, step
    outcome = {"outcome": "confirmed", "reason": ""}
    assert value(after, "saga_outcomes_total", **outcome) - value(before, "saga_outcomes_total", **outcome) == 1
    assert value(after, "orders_by_state", state="confirmed", region="eu") == 1
    assert value(after, "orders_by_state", state="pending", region="eu") == 0
    assert value(after, "messaging_outbox_backlog", module="orders") == 1  # StartSaga
    assert value(after, "messaging_outbox_held", module="orders") == 1  # OrderConfirmed, gathered for fraud
    assert f'messaging_queue_depth{{queue="{settings.CELERY_TASK_QUEUES[1].name}"}}' in after


def test_request_id_is_returned_and_becomes_the_orders_correlation_id(confirmed_order: uuid.UUID) -> None:
    start = OrdersOutbox.objects.get(aggregate_id=str(confirmed_order), message_type="orders.StartSaga")
    assert start.correlation_id == "req-42"

    response = Client().get("/healthz", HTTP_X_REQUEST_ID="abc-1")
    assert response["X-Request-ID"] == "abc-1"
    generated = Client().get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert generated != "bad id with spaces"
    assert uuid.UUID(generated)


def saga_log(order_id: uuid.UUID, *, level: int) -> list[dict]:
    """The JSON log lines of one saga run with ``orders.saga`` at ``level``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structured_formatter())
    saga_logger = logging.getLogger("orders.saga")
    previous = saga_logger.level
    saga_logger.setLevel(level)
    logging.getLogger().addHandler(handler)
    try:
        saga_run(order_id=order_id, correlation_id="req-42")
    finally:
        logging.getLogger().removeHandler(handler)
        saga_logger.setLevel(previous)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_saga_log_lines_carry_correlation_order_and_step(confirmed_order: uuid.UUID) -> None:
    lines = saga_log(confirmed_order, level=logging.DEBUG)

    steps = [line for line in lines if line["event"].startswith("saga step")]
    assert [line["saga_step"] for line in steps] == [*RESERVATION_STEPS, *CONFIRMATION_STEPS]
    assert {line["order_id"] for line in steps} == {str(confirmed_order)}
    assert {line["correlation_id"] for line in steps} == {"req-42"}
    assert any(line["event"] == "saga rests in confirmed" for line in lines)


def test_at_info_the_saga_logs_its_outcome_and_only_slow_steps(
    confirmed_order: uuid.UUID, api_caller: ApiCaller, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = saga_log(confirmed_order, level=logging.INFO)
    assert [line["event"] for line in lines if line["logger"] == "orders.saga"] == ["saga rests in confirmed"]

    monkeypatch.setattr("orders.saga.SLOW_STEP_S", 0.0)  # every step counts as slow
    response = api_caller.place(order_body("SKU-1", 1, customer="cust-slow"))
    lines = saga_log(uuid.UUID(response.json()["id"]), level=logging.INFO)
    assert len([line for line in lines if line["event"].startswith("saga step")]) == len(RESERVATION_STEPS) + len(
        CONFIRMATION_STEPS
    )
