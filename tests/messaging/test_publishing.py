"""What the relay puts on the broker, and the broker transport it uses."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from django.db import connections, transaction

from config.celery import app as celery_app
from messaging.api import drain_batch, redis_client
from messaging.broker import Channel
from messaging.relay import claim_sql, claimed_envelope, envelope_of, relay_sessions_commit_without_flush_wait
from tests.messaging.helpers import add_pings
from tests.probe.models import ProbeOutbox
from tests.probe.tasks import PING
from tests.statements import statements_sent


def test_relayed_message_is_a_celery_task_message_carrying_the_whole_envelope() -> None:
    (row,) = add_pings(1, prefix="wire")

    assert drain_batch(ProbeOutbox, 10) == 1

    raw = json.loads(redis_client().lpop("events"))
    headers = raw["headers"]
    assert headers["task"] == "probe.apply"
    assert headers["argsrepr"] == f"{PING} {row.pk}"
    assert raw["properties"]["correlation_id"] == headers["id"]
    assert raw["properties"]["delivery_info"]["routing_key"] == "events"
    args, kwargs, _embed = json.loads(_body(raw))
    assert kwargs == {}
    (envelope,) = args
    assert envelope["message_id"] == str(row.pk)
    assert envelope["message_type"] == PING
    assert envelope["aggregate_id"] == "wire0"
    assert envelope["sequence"] == row.sequence
    assert envelope["correlation_id"] == row.correlation_id
    assert envelope["payload"] == row.payload
    assert envelope["headers"] == row.headers
    assert envelope["source"] == "default"
    assert envelope["created_at"] == row.created_at.isoformat()


def test_the_relayed_message_runs_its_consumer() -> None:
    add_pings(1, prefix="runs")
    drain_batch(ProbeOutbox, 10)
    raw = json.loads(redis_client().lpop("events"))
    args, kwargs, _embed = json.loads(_body(raw))

    outcome = celery_app.tasks[raw["headers"]["task"]].apply(args=args, kwargs=kwargs).get()

    assert outcome == "ok"


def test_broker_channel_builds_one_client_per_connection_pool() -> None:
    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        assert isinstance(channel, Channel)
        first = channel._create_client()
        assert channel._create_client() is first
        channel._pool = None  # as kombu does when it reconnects
        assert channel._create_client() is not first


def _body(raw: dict) -> str:
    body = raw["body"]
    return base64.b64decode(body).decode() if raw["properties"].get("body_encoding") == "base64" else body


def test_claimed_rows_make_the_same_envelope_as_the_model() -> None:
    (row,) = add_pings(1, prefix="same")
    with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
        cursor.execute(claim_sql(ProbeOutbox), [[], [], 10])
        (claimed,) = cursor.fetchall()
        transaction.set_rollback(True, using="default")

    assert claimed[-1] is False  # published, not held
    assert claimed_envelope(claimed[:-1], "default") == envelope_of(row, "default")


@pytest.mark.django_db(transaction=True, databases=["default", "orders"])
def test_the_relay_s_sessions_commit_without_the_flush_wait_and_save_a_round_trip_per_batch() -> None:
    saved = copy.deepcopy(connections["default"].settings_dict["OPTIONS"])
    add_pings(1, prefix="nowait")
    try:
        relay_sessions_commit_without_flush_wait(["default"])  # what the relay process does at start
        with statements_sent("default") as sent:
            assert drain_batch(ProbeOutbox, 10) == 1
        with connections["default"].cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            (relay_session,) = cursor.fetchone()
        with connections["orders"].cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            (business_session,) = cursor.fetchone()

        assert (relay_session, business_session) == ("off", "on")
        assert [sql for sql in sent if "synchronous_commit" in sql] == []
        assert len(sent) == 1  # the claim; BEGIN and COMMIT are the driver's
    finally:
        connections["default"].settings_dict["OPTIONS"] = saved
        connections["default"].close()
    redis_client().delete("events")


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_a_batch_in_any_other_process_still_commits_without_the_flush_wait() -> None:
    add_pings(1, prefix="setlocal")

    with statements_sent("default") as sent:
        assert drain_batch(ProbeOutbox, 10) == 1

    assert sent[0] == "SET LOCAL synchronous_commit TO off"
    redis_client().delete("events")
