"""Faults injected for real: killed relay, stopped Redis, competing relays,
a consumer that keeps failing, redelivery through the broker."""

from __future__ import annotations

import base64
import json
import subprocess
import time

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client

from messaging.api import redis_client
from messaging.models import DeadLetter
from messaging.publisher import publish_to
from orders.models import Order
from tests.conftest import ApiCaller, Platform, order_body, wait_for_state
from tests.messaging.helpers import add_pings, eventually, ping_envelope
from tests.probe.models import ProbeEffect, ProbeInbox, ProbeOutbox
from tests.probe.tasks import FAIL_KEY

pytestmark = pytest.mark.e2e

REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
]


def _place_and_confirm(api_caller: ApiCaller, count: int, tag: str) -> None:
    ids = [api_caller.place(order_body("SKU-1", 1, customer=f"cust-{tag}-{n}")).json()["id"] for n in range(count)]
    assert {wait_for_state(order_id) for order_id in ids} == {"confirmed"}


def _cut_every_other_session() -> None:
    """What a PostgreSQL restart or failover does to the worker's and the relay's sessions."""
    databases = sorted({connection.settings_dict["NAME"] for connection in connections.all()})
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as admin:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()"
        for (pid,) in admin.execute(query, [databases]).fetchall():
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 10
        while admin.execute(query, [databases]).fetchall() and time.monotonic() < deadline:
            time.sleep(0.02)
    connections.close_all()  # this process's sessions were cut too


def test_a_worker_whose_sessions_were_cut_drives_the_next_orders_without_a_retry(  # type: ignore[no-untyped-def]
    platform: Platform, api_caller: ApiCaller, stock
) -> None:
    stock("SKU-1", 100)
    _place_and_confirm(api_caller, 12, "warm")  # every worker thread holds sessions now
    worker_log = platform.log_dir / "worker.log"
    seen = worker_log.stat().st_size

    _cut_every_other_session()
    _place_and_confirm(api_caller, 12, "after")

    since_cut = worker_log.read_bytes()[seen:].decode(errors="replace")
    assert "transient failure" not in since_cut, since_cut[-3000:]


def test_relay_killed_between_publish_and_mark_republishes_and_applies_once(platform: Platform) -> None:
    Platform.stop(platform.relay)
    (row,) = add_pings(1)

    crashing = platform.start_relay(CRASH_POINTS="relay.after_publish")
    assert crashing.wait(timeout=20) == 137
    assert ProbeOutbox.objects.get(pk=row.pk).published_at is None  # published, never marked
    eventually(lambda: ProbeEffect.objects.count() == 1)

    platform.start_relay()
    eventually(lambda: ProbeOutbox.objects.get(pk=row.pk).published_at is not None)
    eventually(lambda: redis_client().llen("events") == 0)
    time.sleep(0.5)  # let the worker finish the second delivery
    assert ProbeEffect.objects.count() == 1
    assert ProbeInbox.objects.count() == 1


def test_redis_down_while_orders_are_placed_loses_nothing(platform: Platform, api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-1", 100)
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, capture_output=True)
    try:
        ids = [api_caller.place(order_body("SKU-1")).json()["id"] for _ in range(5)]
        time.sleep(1.5)  # the relay tries, fails and backs off meanwhile
        assert set(Order.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"pending"}
    finally:
        subprocess.run(REDIS_START, check=True, capture_output=True)
        eventually(lambda: _redis_up(), timeout=10)

    for order_id in ids:
        assert wait_for_state(order_id, timeout=60) == "confirmed"
    assert Order.objects.filter(pk__in=ids, state="confirmed").count() == 5


def queued_envelope(raw: bytes) -> dict:
    """The envelope inside a Celery message waiting in a Redis queue."""
    args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
    return args[0]


def _redis_up() -> bool:
    try:
        return bool(redis_client().ping())
    except Exception:
        return False


def test_two_relays_over_5000_messages_skip_none(platform: Platform) -> None:
    Platform.stop(platform.relay)
    Platform.stop(platform.worker)
    add_pings(5000)

    first = platform.start_relay()
    second = platform._spawn("relay2", first.args)
    try:
        eventually(lambda: not ProbeOutbox.objects.filter(published_at__isnull=True).exists(), timeout=60)
    finally:
        Platform.stop(second)

    delivered = [queued_envelope(raw)["message_id"] for raw in redis_client().lrange("events", 0, -1)]
    assert set(delivered) == {str(pk) for pk in ProbeOutbox.objects.values_list("pk", flat=True)}
    assert len(set(delivered)) == 5000

    platform.start_worker()
    eventually(lambda: ProbeInbox.objects.count() == 5000, timeout=120)
    eventually(lambda: redis_client().llen("events") == 0, timeout=30)
    assert ProbeEffect.objects.count() == 5000


def test_failing_consumer_dead_letters_then_admin_retry_applies_once(platform: Platform) -> None:
    redis_client().set(FAIL_KEY, "transient")
    (row,) = add_pings(1, prefix="order-42-")

    eventually(lambda: DeadLetter.objects.filter(message_id=row.pk).exists())
    letter = DeadLetter.objects.get(message_id=row.pk)
    assert (letter.attempts, letter.status, letter.consumer) == (4, "open", "probe.apply")
    assert letter.error_message == "probe: dependency unavailable"
    assert ProbeEffect.objects.count() == 0

    redis_client().delete(FAIL_KEY)
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")
    browser = Client()
    browser.force_login(admin)
    response = browser.post(
        "/admin/messaging/deadletter/",
        {"action": "retry_now", "_selected_action": [letter.pk], "reason": "gateway back"},
    )
    assert response.status_code == 302

    eventually(lambda: ProbeEffect.objects.count() == 1)
    eventually(lambda: DeadLetter.objects.get(pk=letter.pk).status == "resolved")
    actions = list(DeadLetter.objects.get(pk=letter.pk).actions.values_list("action", "actor", "reason"))
    assert actions[-2:] == [("retry", "staff:ops", "gateway back"), ("retry_succeeded", "system", "")]
    assert ProbeEffect.objects.count() == 1


def test_a_message_delivered_ten_times_by_the_broker_has_one_effect(platform: Platform) -> None:
    envelope = ping_envelope("dup")
    for _ in range(10):
        publish_to(task_name="probe.apply", queue="events", envelope=envelope)

    eventually(lambda: ProbeInbox.objects.count() == 1)
    eventually(lambda: redis_client().llen("events") == 0)
    time.sleep(0.5)
    assert ProbeEffect.objects.filter(message_id=envelope["message_id"]).count() == 1
