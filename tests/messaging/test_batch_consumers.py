"""Batch consumers: many envelopes per message and per transaction, and still each applied once."""

from __future__ import annotations

import base64
import json

import psycopg
import pytest
from django.conf import settings
from django.test import override_settings

from messaging.api import dead_letter_retry, redis_client
from messaging.event_hold import EventHold, holdable_message_types
from messaging.models import DeadLetter, DeadLetterStatus
from messaging.outbox import NOTIFY_CHANNEL
from messaging.publisher import publish_envelopes
from messaging.relay import Relay, _dsn, outbox_backlog, schema_of
from orders.contracts import ORDER_CONFIRMED, START_SAGA
from tests.messaging.helpers import Clock, probe_envelope, refuse_once, write_row
from tests.probe.models import ProbeEffect, ProbeOutbox
from tests.probe.tasks import FAIL_KEY, FLAKY_KEY, PING, TALLY, TALLY_BATCHES_KEY, apply_tallies

pytestmark = pytest.mark.django_db(databases="__all__")


def tally(key: str, **payload: object) -> dict:
    return probe_envelope(TALLY, key, **payload)


def _effects() -> list[str]:
    return sorted(ProbeEffect.objects.values_list("key", flat=True))


def _handler_calls() -> list[int]:
    return [int(n) for n in redis_client().lrange(TALLY_BATCHES_KEY, 0, -1)]


def _args(raw: bytes) -> list:
    """The task arguments of a Celery message as it sits in Redis."""
    return json.loads(base64.b64decode(json.loads(raw)["body"]))[0]


def _queued_batches(queue: str = "events") -> list[list[str]]:
    """The aggregate ids of each message waiting in ``queue``, oldest first."""
    return [[e["aggregate_id"] for e in _args(raw)[0]] for raw in reversed(redis_client().lrange(queue, 0, -1))]


def test_only_types_whose_every_consumer_takes_batches_are_gathered() -> None:
    gathered = holdable_message_types(("events",), batched=True)

    assert TALLY in gathered
    assert ORDER_CONFIRMED in gathered  # fraud's customer history takes batches
    assert PING not in gathered  # one envelope per message: held only under pressure
    assert PING in holdable_message_types(("events",))


def test_a_batch_consumer_gets_its_envelopes_in_messages_of_at_most_its_batch_size() -> None:
    sent = publish_envelopes([tally(f"t{i}") for i in range(7)])

    assert sent == 3
    assert _queued_batches() == [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]


def test_a_batch_is_applied_in_one_call_and_each_envelope_once() -> None:
    earlier = tally("earlier")
    assert apply_tallies.apply(args=[[earlier]]).get() == {"applied": 1, "duplicate": 0, "dead_lettered": 0}
    fresh = tally("fresh")

    # A redelivery overlapping the earlier message, with one envelope in it twice.
    outcome = apply_tallies.apply(args=[[earlier, fresh, fresh]]).get()

    assert outcome == {"applied": 1, "duplicate": 2, "dead_lettered": 0}
    assert _effects() == ["earlier", "fresh"]
    assert _handler_calls() == [1, 1]  # the handler saw only what was new


def test_a_poisoned_envelope_becomes_the_only_dead_letter_of_its_batch() -> None:
    batch = [tally("a"), tally("bad", poison=True), tally("c")]

    outcome = apply_tallies.apply(args=[batch]).get()

    assert outcome == {"applied": 2, "duplicate": 0, "dead_lettered": 1}
    assert _effects() == ["a", "c"]
    letter = DeadLetter.objects.get()
    assert (letter.consumer, letter.envelope["aggregate_id"], letter.error_type) == (
        "probe.tally",
        "bad",
        "builtins.ValueError",
    )
    assert _handler_calls() == [3, 1, 1, 1]  # the batch, then each envelope on its own


def test_retries_exhausted_make_a_dead_letter_of_each_envelope_not_applied_and_a_retry_applies_one() -> None:
    applied_before = tally("before")
    apply_tallies.apply(args=[[applied_before]])
    redis_client().set(FAIL_KEY, "transient")
    batch = [tally("x"), applied_before, tally("y"), tally("y")]
    batch[3]["message_id"] = batch[2]["message_id"]  # the same message twice

    assert apply_tallies.apply(args=[batch]).get() == {"applied": 0, "duplicate": 2, "dead_lettered": 2}

    letters = {letter.envelope["aggregate_id"]: letter for letter in DeadLetter.objects.all()}
    assert sorted(letters) == ["x", "y"]  # none for what the inbox already held, one per message
    assert {letter.attempts for letter in letters.values()} == {3}  # 1 + 2 retries
    assert _effects() == ["before"]

    redis_client().delete(FAIL_KEY)
    dead_letter_retry(letter_id=letters["x"].pk, actor="ops")  # one envelope, as a person retries it
    retried = _args(redis_client().lpop("events"))
    assert isinstance(retried[0], dict)

    assert apply_tallies.apply(args=retried).get() == {"applied": 1, "duplicate": 0, "dead_lettered": 0}

    assert _effects() == ["before", "x"]
    letters["x"].refresh_from_db()
    assert letters["x"].status == DeadLetterStatus.RESOLVED


def test_a_retry_after_a_poisoned_envelope_carries_only_what_is_left() -> None:
    redis_client().set(FLAKY_KEY, 2)  # the flaky envelope fails twice, then applies
    batch = [tally("bad", poison=True), tally("flaky", flaky=True)]

    apply_tallies.apply(args=[batch])

    assert _effects() == ["flaky"]
    letter = DeadLetter.objects.get()  # one letter, recorded once: the poison was not sent again
    assert (letter.envelope["aggregate_id"], letter.attempts, letter.status) == ("bad", 1, DeadLetterStatus.OPEN)
    # The batch, each envelope alone, then the flaky one alone on each of its two retries.
    assert _handler_calls() == [2, 1, 1, 1, 1]


def test_the_relay_gathers_batch_consumers_rows_and_lets_them_go_together() -> None:
    clock = Clock()
    relay = Relay()
    relay.hold = EventHold(
        holdable=(), gathered=(TALLY,), release_per_s=100.0, release_every_s=0.5, read_lag=lambda: 0.0, clock=clock
    )
    try:
        write_row(TALLY, "first")
        relay.drain_all([ProbeOutbox])  # a quiet platform: the first goes at once
        assert _queued_batches() == [["first"]]
        redis_client().delete("events")

        for key in ("t1", "t2", "t3", "t4"):
            write_row(TALLY, key)
            saga = write_row(START_SAGA, f"order-{key}")
            relay.drain_all([ProbeOutbox])  # each commit wakes the relay: the saga's message goes, the tally waits
            assert redis_client().llen("saga.eu") >= 1, saga
            clock.now += 0.1
        assert _queued_batches() == []
        assert outbox_backlog(ProbeOutbox, held=True)[0] == 4

        clock.now += 0.2  # half a second since the last release
        relay.drain_all([ProbeOutbox])

        assert _queued_batches() == [["t1", "t2", "t3"], ["t4"]]
        assert outbox_backlog(ProbeOutbox, held=True)[0] == 0
        assert redis_client().llen("saga.eu") == 4
    finally:
        relay._drop_producer()


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_gathered_row_is_written_held_and_wakes_no_relay() -> None:
    with psycopg.connect(_dsn(ProbeOutbox.objects.db), autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")

        quiet = write_row(TALLY, "quiet")

        assert quiet.held_at is not None
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []

        loud = write_row(PING, "loud")

        assert loud.held_at is None
        (notice,) = list(listener.notifies(timeout=5.0, stop_after=1))
        assert notice.payload == schema_of(ProbeOutbox)


def test_a_type_fed_one_message_at_a_time_keeps_the_bounded_release_rate() -> None:
    hold = EventHold.from_settings()
    assert PING in hold.holdable  # its consumer takes one envelope per task
    assert hold.release_per_s == settings.MESSAGING_HELD_RELEASE_PER_S == 50

    with override_settings(MESSAGING_HOLD_EVENTS=False):
        only_gathered = EventHold.from_settings()

    assert only_gathered.holdable == ()
    assert TALLY in only_gathered.gathered
    assert only_gathered.release_per_s == settings.MESSAGING_GATHERED_RELEASE_PER_S == 500


def test_a_dead_letter_store_that_refuses_loses_no_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    from messaging import batch_consumers

    refuse_once(monkeypatch, batch_consumers, "give_up")
    batch = [tally("bad", poison=True), tally("after")]

    apply_tallies.apply(args=[batch])

    assert _effects() == ["after"]  # tried on the retry, with the poisoned one
    assert [letter.envelope["aggregate_id"] for letter in DeadLetter.objects.all()] == ["bad"]
    # The batch and each alone (the store refused "bad"'s letter), then the retry: both, and each alone.
    assert _handler_calls() == [2, 1, 2, 1, 1]


def test_a_dead_letter_store_that_refuses_after_the_last_retry_loses_no_envelope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from messaging import batch_consumers

    refuse_once(monkeypatch, batch_consumers, "give_up")
    redis_client().set(FAIL_KEY, "transient")

    apply_tallies.apply(args=[[tally("late")]], retries=2)  # its last retry (max_retries=2)

    assert [(letter.envelope["aggregate_id"], letter.attempts) for letter in DeadLetter.objects.all()] == [("late", 4)]
