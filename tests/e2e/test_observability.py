"""One order's log lines, written by three processes, share its correlation id."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest

from config.logging import structured_formatter
from tests.conftest import ApiCaller, Platform, order_body, wait_for_state

pytestmark = pytest.mark.e2e


def json_lines(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue  # Celery's banner
    return lines


def test_web_relay_and_worker_log_lines_share_the_correlation_id(
    platform: Platform, api_caller: ApiCaller, stock
) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-1", 5)
    web_log = io.StringIO()
    handler = logging.StreamHandler(web_log)
    handler.setFormatter(structured_formatter())
    logging.getLogger().addHandler(handler)
    try:
        response = api_caller.place(order_body("SKU-1"), HTTP_X_REQUEST_ID="night-shift-7")
    finally:
        logging.getLogger().removeHandler(handler)
    order_id = response.json()["id"]
    assert response["X-Request-ID"] == "night-shift-7"
    assert wait_for_state(order_id) == "confirmed"
    time.sleep(0.5)  # let the processes flush their last lines

    def tagged(lines: list[dict]) -> list[dict]:
        return [line for line in lines if line.get("correlation_id") == "night-shift-7"]

    web = tagged(json_lines(web_log.getvalue()))
    relay = tagged(json_lines(platform.logs("relay")))
    worker = tagged(json_lines(platform.logs("worker")))
    assert {line["event"] for line in web} >= {f"order {order_id} accepted", "POST /api/v1/orders 202"}
    assert any(line["event"] == "published orders.StartSaga" and line["aggregate_id"] == order_id for line in relay)
    # At INFO the saga logs its outcome (and only slow steps): that line carries the order and the request.
    assert any(line["event"] == "saga rests in confirmed" and line.get("order_id") == order_id for line in worker)
