"""Admission control: new orders and low-priority reads get 503 + Retry-After while the saga is behind."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.test import Client, override_settings
from django.utils import timezone

from messaging.api import queue_wait, queue_waits, redis_client
from messaging.drain import taken_key
from messaging.publisher import publish_to
from messaging.queues import announced_key
from orders import admission
from orders.admission import (
    BUSY_WITHIN_S,
    IN_FLIGHT_S,
    Announcements,
    Drain,
    DrainRates,
    OnTheirWay,
    forget_lag,
    gate,
    saga_lag_s,
)
from orders.contracts import START_SAGA
from orders.models import OrdersOutbox
from tests.conftest import ApiCaller, order_body, table_counts


@pytest.fixture(autouse=True)
def _thresholds() -> Iterator[None]:
    forget_lag()
    with override_settings(ADMISSION_ORDER_LAG_S=10.0, ADMISSION_READ_LAG_S=3.0, ADMISSION_CHECK_EVERY_S=0.0):
        yield
    forget_lag()


NOT_AGED = -60.0  # a message written "in the future": its wait reads 0 however long a test runs


def start_saga_waiting(region: str, *, waited_s: float) -> None:
    """A StartSaga of another order, still in the region's saga queue after ``waited_s``."""
    created = timezone.now() - timedelta(seconds=waited_s)
    envelope = {
        "message_id": str(uuid.uuid4()),
        "message_type": START_SAGA,
        "version": 1,
        "source": "orders",
        "aggregate_id": str(uuid.uuid4()),
        "sequence": 1,
        "correlation_id": "earlier order",
        "causation_id": "",
        "region": region,
        "created_at": created.isoformat(),
        "payload": {},
        "headers": {},
    }
    publish_to(task_name="orders.start_saga", queue=f"saga.{region}", envelope=envelope)


def test_orders_of_a_region_far_behind_are_refused_with_retry_after(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    start_saga_waiting("eu", waited_s=25)
    before = table_counts()

    refused = api_caller.place(order_body("SKU-A", 1, region="eu"))

    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "overloaded"
    assert 15 <= int(refused["Retry-After"]) <= 17  # until the 25 s are back under the 10 s threshold
    assert table_counts() == before
    assert api_caller.place(order_body("SKU-A", 1, region="us")).status_code == 202


def test_a_refusal_is_logged_once_at_info_not_as_a_server_error(
    api_caller: ApiCaller, stock, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    start_saga_waiting("eu", waited_s=25)

    with caplog.at_level(logging.INFO):
        assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 503

    assert [(r.name, r.levelno) for r in caplog.records] == [("http", logging.INFO)]
    assert caplog.records[0].getMessage() == "POST /api/v1/orders 503"


def test_orders_are_accepted_while_the_lag_is_within_bounds(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    start_saga_waiting("eu", waited_s=4)

    assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 202
    assert saga_lag_s()["eu"] == pytest.approx(4, abs=1)


def test_orders_are_accepted_while_the_broker_cannot_be_read(api_caller: ApiCaller, stock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    start_saga_waiting("eu", waited_s=25)

    def broker_down() -> None:
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr("messaging.queues.redis_client", broker_down)

    assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 202


def test_a_relay_behind_sheds_nothing(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    assert api_caller.place(order_body("SKU-A", 1, region="apac")).status_code == 202
    OrdersOutbox.objects.update(created_at=timezone.now() - timedelta(seconds=30))  # the broker is down

    assert api_caller.place(order_body("SKU-A", 1, region="apac")).status_code == 202


def test_stock_reads_pause_earlier_than_orders(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    start_saga_waiting("us", waited_s=5)

    read = api_caller.get("/api/v1/inventory/SKU-A")
    assert read.status_code == 503
    assert read["Retry-After"] in {"2", "3"}  # 5 s behind, reads paused from 3
    assert api_caller.place(order_body("SKU-A", 1, region="us")).status_code == 202


def test_an_order_can_still_be_read_when_the_platform_is_behind(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    placed = api_caller.place(order_body("SKU-A", 1, region="eu"))
    start_saga_waiting("eu", waited_s=60)

    assert api_caller.get(f"/api/v1/orders/{placed.json()['id']}").status_code == 200


def test_each_process_reads_the_lag_at_most_every_interval(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    with override_settings(ADMISSION_CHECK_EVERY_S=60.0):
        assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 202
        start_saga_waiting("eu", waited_s=25)
        assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 202  # not read yet
        forget_lag()
        assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 503


def test_when_every_region_is_behind_orders_are_refused_before_anything_is_read(api_caller: ApiCaller) -> None:
    for region in ("eu", "us", "apac"):
        start_saga_waiting(region, waited_s=30)

    unauthenticated = api_caller.client.post(
        "/api/v1/orders", "{not json", content_type="application/json", HTTP_AUTHORIZATION="Bearer wrong"
    )

    assert unauthenticated.status_code == 503  # not 401 or 400: the gate answered first, cheaply
    assert unauthenticated.json()["error"]["code"] == "overloaded"
    assert 20 <= int(unauthenticated["Retry-After"]) <= 22


@override_settings(ADMISSION_SAGA_RATE_PER_S=10.0)
def test_a_long_queue_of_fresh_orders_counts_as_behind(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    for _ in range(120):  # 12 s of work at 10 sagas/s, none of it old yet
        start_saga_waiting("us", waited_s=0)

    refused = api_caller.place(order_body("SKU-A", 1, region="us"))

    assert refused.status_code == 503
    assert refused["Retry-After"] == "2"  # 12 s of work, 2 over the threshold
    assert saga_lag_s()["us"] == pytest.approx(12.0)
    assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 202


def test_an_order_of_a_region_behind_is_refused_before_authentication(api_caller: ApiCaller) -> None:
    start_saga_waiting("eu", waited_s=30)
    body = json.dumps({"region": "eu", "lines": "not even valid"})

    refused = api_caller.client.post("/api/v1/orders", body, content_type="application/json")

    assert refused.status_code == 503
    assert (
        api_caller.client.post(
            "/api/v1/orders", json.dumps({"region": "us"}), content_type="application/json"
        ).status_code
        == 401
    )  # us is not behind: on to authentication


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(gate, "_clock", clock)
    return clock


def taken_off(region: str, messages: int) -> None:
    """The workers took ``messages`` off the region's saga queue (messaging/drain.py)."""
    redis_client().incrby(taken_key(f"saga.{region}"), messages)


@override_settings(ADMISSION_ORDER_LAG_S=3.0, ADMISSION_SAGA_RATE_PER_S=30.0)
def test_a_queue_seen_to_drain_faster_than_assumed_is_read_as_nearer(api_caller: ApiCaller, stock, clock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    for _ in range(120):  # 4 s of work at the 30/s assumed, none of it old yet
        start_saga_waiting("eu", waited_s=0)
    assert saga_lag_s()["eu"] == pytest.approx(4.0)  # one reading: no rate measured yet
    assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 503

    taken_off("eu", 270)
    clock.now += 3.0  # the workers took 90 a second meanwhile

    assert saga_lag_s()["eu"] == pytest.approx(120 / 90)
    assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 202


@override_settings(ADMISSION_SAGA_RATE_PER_S=30.0)
def test_a_queue_that_ran_dry_in_the_window_is_read_at_the_least_rate(clock) -> None:  # type: ignore[no-untyped-def]
    assert saga_lag_s()["us"] == 0.0  # nothing waiting at the first reading
    for _ in range(60):
        start_saga_waiting("us", waited_s=0)
    taken_off("us", 15)
    clock.now += 3.0  # 5 a second: only what arrived, not what the workers could do

    assert saga_lag_s()["us"] == pytest.approx(2.0)


@override_settings(ADMISSION_SAGA_RATE_PER_S=30.0)
def test_a_queue_backlogged_at_every_reading_is_read_at_its_measured_rate_below_the_least(clock) -> None:  # type: ignore[no-untyped-def]
    """A slow machine: its workers take 3 a second from the region, and an order queued behind 60 waits 20 s, not
    the 2 s the least rate would promise."""
    for _ in range(60):
        start_saga_waiting("us", waited_s=0)
    for _ in range(4):  # five readings in all, the queue never empty
        saga_lag_s()
        taken_off("us", 3)
        clock.now += 1.0

    assert saga_lag_s()["us"] == pytest.approx(60 / 3)


@override_settings(ADMISSION_SAGA_RATE_PER_S=30.0)
def test_a_queue_whose_counter_stood_still_is_read_at_the_least_rate(clock) -> None:  # type: ignore[no-untyped-def]
    """Workers down (their oldest message ages, and that refuses soon enough) or workers that cannot count: either
    way the counter says nothing about how fast the queue could drain."""
    for _ in range(60):
        start_saga_waiting("us", waited_s=0)
    for _ in range(5):
        saga_lag_s()
        clock.now += 1.0

    assert saga_lag_s()["us"] == pytest.approx(2.0)


@override_settings(ADMISSION_SAGA_RATE_PER_S=30.0)
def test_a_counter_that_began_again_is_measured_again_from_its_new_start(clock) -> None:  # type: ignore[no-untyped-def]
    for _ in range(90):
        start_saga_waiting("apac", waited_s=0)
    taken_off("apac", 1_000)
    saga_lag_s()
    redis_client().delete(taken_key("saga.apac"))  # Redis restarted
    taken_off("apac", 5)
    clock.now += 3.0

    assert saga_lag_s()["apac"] == pytest.approx(3.0)  # the least rate, not a negative or a huge one
    taken_off("apac", 300)
    clock.now += 3.0
    assert saga_lag_s()["apac"] == pytest.approx(90 / 100)  # 300 in the 3 s since the new start


@override_settings(ADMISSION_DRAIN_WINDOW_S=5.0)
def test_the_rate_is_read_over_the_last_window_once_readings_span_half_of_it() -> None:
    rates = DrainRates()

    assert rates.observe("eu", taken=0, depth=0, at=0.0) is None
    assert rates.observe("eu", taken=50, depth=9, at=0.5) is None
    assert rates.observe("eu", taken=200, depth=3, at=2.0) is None  # 2 s: counts added every quarter second: 2.25 s
    assert rates.observe("eu", taken=250, depth=4, at=2.5) == Drain(per_s=100.0, backlogged=False)  # empty at 0
    # From the reading at 2: those at 0 and 0.5 have left. Held messages at every one since, but only three readings.
    assert rates.observe("eu", taken=400, depth=1, at=6.0) == Drain(per_s=50.0, backlogged=False)
    assert rates.observe("eu", taken=420, depth=2, at=6.4) == Drain(per_s=pytest.approx(50.0), backlogged=False)  # four
    assert rates.observe("eu", taken=510, depth=3, at=7.0) == Drain(per_s=62.0, backlogged=True)  # five, from 2.0
    assert rates.observe("eu", taken=510, depth=0, at=7.5) == Drain(per_s=52.0, backlogged=False)  # ran dry
    assert rates.observe("eu", taken=10, depth=1, at=6.5) is None  # the counter began again: so does the window
    assert rates.observe("us", taken=7, depth=1, at=6.5) is None  # each region its own


@override_settings(ADMISSION_ORDER_LAG_S=1.5)
def test_an_order_refused_just_over_the_threshold_is_asked_back_after_a_second(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    start_saga_waiting("apac", waited_s=1.8)

    refused = api_caller.place(order_body("SKU-A", 1, region="apac"))

    assert (refused.status_code, refused["Retry-After"]) == (503, "1")


class OnlyPipelines:
    """A Redis client that counts the pipelines asked of it; any command sent outside one fails."""

    def __init__(self) -> None:
        self.pipelines = 0

    def pipeline(self, **options: Any) -> Any:
        self.pipelines += 1
        return redis_client().pipeline(**options)


def test_every_region_s_queue_is_read_in_one_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    start_saga_waiting("eu", waited_s=2.0)
    start_saga_waiting("apac", waited_s=0.5)
    taken_off("us", 7)

    counted = OnlyPipelines()
    monkeypatch.setattr("messaging.queues.redis_client", lambda: counted)
    readings = queue_waits(START_SAGA, ["eu", "us", "apac"])
    assert counted.pipelines == 1

    assert readings == {region: queue_wait(START_SAGA, region) for region in ("eu", "us", "apac")}
    assert (readings["eu"].depth, readings["us"].depth, readings["us"].taken, readings["apac"].depth) == (1, 0, 7, 1)
    assert readings["eu"].oldest_at < readings["apac"].oldest_at  # type: ignore[operator]


def measured(clock: Clock) -> None:
    """Two readings 3 s apart: every region's drain rate is measured (the least rate, when nothing was taken)."""
    saga_lag_s()
    clock.now += 3.0
    saga_lag_s()


def placed(region: str) -> None:
    """An order of ``region`` admitted and placed by this process, its request answered."""
    ticket = admission.admit_order(region)
    admission.order_placed(ticket)
    admission.order_answered(ticket)


@override_settings(ADMISSION_ORDER_LAG_S=1.05, ADMISSION_SAGA_RATE_PER_S=10.0, ADMISSION_CHECK_EVERY_S=0.5)
def test_orders_placed_since_the_last_reading_count_while_the_queue_is_busy(
    api_caller: ApiCaller, stock, clock
) -> None:  # type: ignore[no-untyped-def]
    """A wave of orders between two readings: the queue shows none of them yet (no relay runs here), but while the
    workers are busy each one placed is a tenth of a second more to wait at 10 sagas a second."""
    stock("SKU-A", 100)
    for _ in range(5):  # 0.5 s of work: a reading interval's, the queue is busy
        start_saga_waiting("eu", waited_s=NOT_AGED)
    measured(clock)

    answers = [api_caller.place(order_body("SKU-A", 1, region="eu")).status_code for _ in range(7)]

    assert answers == [202] * 6 + [503]  # the 6th found 0.5 + 0.5 s; the 7th 1.1 s, over 1.05
    assert queue_wait(START_SAGA, "eu").depth == 5
    assert api_caller.place(order_body("SKU-A", 1, region="us")).status_code == 202  # us is idle
    assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 503  # a refusal added nothing
    clock.now += IN_FLIGHT_S + 0.05  # no reading yet: the orders placed are in the queue by now
    assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 202


@override_settings(ADMISSION_ORDER_LAG_S=0.75, ADMISSION_SAGA_RATE_PER_S=10.0, ADMISSION_CHECK_EVERY_S=0.5)
def test_only_orders_placed_count_once_answered_not_requests_refused_or_repeated(
    api_caller: ApiCaller, stock, clock
) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 100)
    for _ in range(5):
        start_saga_waiting("eu", waited_s=NOT_AGED)  # 0.5 s of work
    measured(clock)
    invalid = {**order_body("SKU-A", 1, region="eu"), "lines": []}
    for _ in range(5):
        unauthenticated = api_caller.client.post(
            "/api/v1/orders", order_body("SKU-A", 1), content_type="application/json"
        )
        assert (unauthenticated.status_code, api_caller.place(invalid).status_code) == (401, 422)

    first = api_caller.place(order_body("SKU-A", 1, region="eu"), key="order-1")  # 0.5 s: placed, counts
    repeated = api_caller.place(order_body("SKU-A", 1, region="eu"), key="order-1")  # 0.6 s: a repeat, counts not

    assert (first.status_code, repeated.status_code, repeated["Idempotent-Replayed"]) == (202, 202, "true")
    assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 202  # 0.6 s
    assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 202  # 0.7 s
    assert api_caller.place(order_body("SKU-A", 1, region="eu")).status_code == 503  # 0.8 s


@override_settings(ADMISSION_SAGA_RATE_PER_S=10.0, ADMISSION_CHECK_EVERY_S=0.05)
def test_orders_placed_are_announced_at_the_next_reading_and_count_for_every_process(clock) -> None:  # type: ignore[no-untyped-def]
    for _ in range(20):
        start_saga_waiting("eu", waited_s=NOT_AGED)  # 2 s of work
    measured(clock)
    clock.now += IN_FLIGHT_S / 2
    assert saga_lag_s()["eu"] == pytest.approx(2.0)
    placed("eu")
    placed("eu")
    clock.now += IN_FLIGHT_S / 2
    redis_client().incrby(announced_key("saga.eu"), 15)  # another web process's announcement meanwhile

    assert saga_lag_s()["eu"] == pytest.approx((20 + 17) / 10)  # the 17 placed are on their way, not in the queue
    assert int(redis_client().get(announced_key("saga.eu"))) == 17  # this process announced its two
    clock.now += IN_FLIGHT_S
    assert saga_lag_s()["eu"] == pytest.approx(2.0)  # placed long enough ago to show in the queue, were they there
    placed("eu")
    clock.now += IN_FLIGHT_S + 0.05  # a process that read nothing for a while: by now that order shows in the queue
    assert saga_lag_s()["eu"] == pytest.approx(2.0)
    assert int(redis_client().get(announced_key("saga.eu"))) == 17  # and it was not announced late


@override_settings(ADMISSION_ORDER_LAG_S=0.5, ADMISSION_SAGA_RATE_PER_S=30.0, ADMISSION_CHECK_EVERY_S=0.05)
def test_orders_on_their_way_to_a_queue_the_workers_keep_up_with_do_not_count(clock) -> None:  # type: ignore[no-untyped-def]
    """A fast machine at a spike: 100 orders placed in a quarter second, two messages between the relay and a worker
    that takes 86 a second: not a second of wait, and not at the least rate before any rate is measured either."""
    start_saga_waiting("apac", waited_s=NOT_AGED)
    start_saga_waiting("apac", waited_s=NOT_AGED)
    saga_lag_s()
    clock.now += IN_FLIGHT_S
    redis_client().incrby(announced_key("saga.apac"), 100)
    assert saga_lag_s()["apac"] == pytest.approx(2 / 30)  # no rate measured yet: only the least one assumed
    clock.now += 3.0
    taken_off("apac", 300)
    saga_lag_s()
    clock.now += IN_FLIGHT_S
    redis_client().incrby(announced_key("saga.apac"), 100)

    # 300 taken in the 3.5 s the readings span: two messages are not the workers' backlog, nor are the 100 on their way.
    assert saga_lag_s()["apac"] == pytest.approx(2 / (300 / 3.5))
    admission.admit_order("apac")  # not refused


@override_settings(ADMISSION_SAGA_RATE_PER_S=10.0, ADMISSION_CHECK_EVERY_S=0.05)
def test_orders_on_their_way_count_for_a_second_after_the_queue_was_seen_busy(clock) -> None:  # type: ignore[no-untyped-def]
    """A wave of retries right after the workers emptied the queue: its orders count until a second has passed
    with the queue never seen holding work."""
    start_saga_waiting("us", waited_s=NOT_AGED)
    measured(clock)  # the queue held a message at both readings
    redis_client().delete("saga.us")  # the workers took it
    clock.now += IN_FLIGHT_S
    redis_client().incrby(announced_key("saga.us"), 5)
    assert saga_lag_s()["us"] == pytest.approx(5 / 10)  # empty now, but busy 0.25 s ago: the 5 will queue

    clock.now += BUSY_WITHIN_S
    redis_client().incrby(announced_key("saga.us"), 5)
    assert saga_lag_s()["us"] == 0.0  # not seen busy for a second: the workers keep up


def test_an_order_is_on_its_way_while_its_request_runs_and_a_quarter_second_after_it_was_placed() -> None:
    on_their_way = OnTheirWay()
    refused = on_their_way.admitted("eu")
    placing = on_their_way.admitted("eu")
    on_their_way.admitted("us")

    assert (on_their_way.count("eu", now=10.0), on_their_way.count("us", now=10.0)) == (2, 1)
    on_their_way.answered(refused)  # a 401, a 422, a repeat: nothing of it is on its way
    on_their_way.placed(placing, at=10.0)
    on_their_way.answered(placing)
    assert on_their_way.count("eu", now=10.2) == 1
    assert on_their_way.take(now=10.2) == {"eu": 1}  # the placed one is announced; the us request still runs
    assert on_their_way.take(now=10.2) == {}
    assert (on_their_way.count("eu", now=10.2), on_their_way.count("us", now=20.0)) == (0, 1)
    late = on_their_way.admitted("eu")
    on_their_way.placed(late, at=11.0)
    assert (on_their_way.count("eu", now=11.3), on_their_way.take(now=11.3)) == (0, {})  # in the queue by now


def test_announcements_count_what_arrived_in_the_last_quarter_second() -> None:
    announcements = Announcements()

    assert announcements.lately("eu", announced=1_000, at=0.0) == 0  # a first reading: the counter's past is not ours
    assert announcements.lately("eu", announced=1_010, at=0.1) == 10
    assert announcements.lately("eu", announced=1_030, at=0.2) == 30
    # Since the last reading at least 0.25 s old, in proportion: 40 in 0.3 s, 40 in the 0.3 s since 0.1.
    assert announcements.lately("eu", announced=1_040, at=0.3) == pytest.approx(40 * IN_FLIGHT_S / 0.3)
    assert announcements.lately("eu", announced=1_050, at=0.4) == pytest.approx(40 * IN_FLIGHT_S / 0.3)
    assert announcements.lately("eu", announced=1_050, at=0.5) == pytest.approx(20 * IN_FLIGHT_S / 0.3)  # since 0.2
    assert announcements.lately("us", announced=7, at=0.4) == 0  # each region its own
    # A process idle for a minute: what it missed is read at its average, a quarter second's worth.
    assert announcements.lately("eu", announced=1_650, at=60.5) == pytest.approx(600 * IN_FLIGHT_S / 60)
    assert announcements.lately("eu", announced=3, at=60.8) == 0  # the counter began again: so do we
    # 0.35 - 0.1 is 0.24999999999999997: the reading at 0.1 is the quarter second's start, not the one before it.
    assert announcements.lately("apac", announced=0, at=0.0) == 0
    assert announcements.lately("apac", announced=10, at=0.1) == 10
    assert announcements.lately("apac", announced=30, at=0.35) == 20


def test_announcing_adds_to_every_region_s_counter_in_the_reading_s_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    start_saga_waiting("eu", waited_s=2.0)
    taken_off("eu", 5)
    redis_client().incrby(announced_key("saga.us"), 4)
    before = queue_wait(START_SAGA, "eu")

    counted = OnlyPipelines()
    monkeypatch.setattr("messaging.queues.redis_client", lambda: counted)
    readings = queue_waits(START_SAGA, ["eu", "us", "apac"], announce={"eu": 3, "mars": 9})

    assert counted.pipelines == 1
    assert {region: wait.announced for region, wait in readings.items()} == {"eu": 3, "us": 4, "apac": 0}
    assert (readings["eu"].depth, readings["eu"].taken, readings["eu"].oldest_at) == (1, 5, before.oldest_at)
    assert before.announced is None  # only read when announcing
    assert redis_client().exists(announced_key("saga.apac")) == 0  # nothing to announce: nothing written


def scraped_lags() -> dict[str, float]:
    scraped = Client().get("/metrics").content.decode()
    return {
        region: float(lag)
        for region, lag in re.findall(r'admission_saga_lag_seconds\{region="(\w+)"\} ([\d.e+-]+)', scraped)
    }


@override_settings(ADMISSION_SAGA_RATE_PER_S=10.0)
def test_the_lag_the_gate_last_read_is_a_metric_by_region(clock, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    for _ in range(25):
        start_saga_waiting("us", waited_s=NOT_AGED)
    assert scraped_lags() == {}  # no reading yet: a scrape takes none of its own

    saga_lag_s()
    monkeypatch.setattr("messaging.queues.redis_client", lambda: None)  # a scrape reads nothing from Redis
    assert scraped_lags() == {"apac": 0.0, "eu": 0.0, "us": pytest.approx(2.5)}
    clock.now += gate.SHOWN_FOR_S + 1
    assert scraped_lags() == {}  # a process that served no orders lately has nothing to say


@override_settings(ADMISSION_ORDER_LAG_S=10.0, ADMISSION_SAGA_RATE_PER_S=10.0, ADMISSION_CHECK_EVERY_S=0.5)
def test_a_repeat_waiting_for_its_outcome_is_not_on_its_way(api_caller: ApiCaller, stock, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-A", 10)
    for _ in range(5):
        start_saga_waiting("eu", waited_s=NOT_AGED)  # busy
    measured(clock)
    assert api_caller.place(order_body("SKU-A", 1, region="eu"), key="order-1").status_code == 202
    on_their_way_while_waiting = []

    def waiting(order_id: uuid.UUID, seconds: float) -> bool:
        on_their_way_while_waiting.append(gate._on_their_way.count("eu", now=clock.now))
        return False

    monkeypatch.setattr("orders.http.routes._await_outcome", waiting)
    repeated = api_caller.place(order_body("SKU-A", 1, region="eu"), key="order-1", wait=10)

    assert (repeated.status_code, repeated["Idempotent-Replayed"]) == (202, "true")
    assert on_their_way_while_waiting == [1]  # the order placed first, not its repeat
