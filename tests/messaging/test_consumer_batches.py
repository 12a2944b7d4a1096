"""A consumer fed several envelopes per message handles each as if it had come alone."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings

from messaging.api import redis_client
from messaging.event_hold import holdable_message_types
from messaging.models import DeadLetter
from messaging.publisher import publish_envelopes
from messaging.subscriptions import subscribers
from orders.contracts import START_SAGA
from tests.messaging.helpers import probe_envelope
from tests.messaging.test_batch_consumers import _queued_batches
from tests.probe.models import ProbeEffect
from tests.probe.tasks import FLAKY_KEY, NUDGE, apply_nudge

pytestmark = pytest.mark.django_db(databases="__all__")


def nudge(key: str, **payload: object) -> dict:
    return probe_envelope(NUDGE, key, **payload)


def _effects() -> list[str]:
    return sorted(ProbeEffect.objects.values_list("key", flat=True))


def test_envelopes_claimed_together_go_in_messages_of_at_most_the_batch() -> None:
    publish_envelopes([nudge(f"n{i}") for i in range(6)])

    assert _queued_batches() == [["n0", "n1", "n2", "n3"], ["n4", "n5"]]


def test_the_saga_takes_its_orders_several_per_message_and_is_never_held_back() -> None:
    noncritical = tuple(settings.MESSAGING_NONCRITICAL_QUEUES)

    assert settings.SAGA_START_BATCH > 1
    assert [(s.queue, s.batch) for s in subscribers(START_SAGA)] == [("saga.{region}", settings.SAGA_START_BATCH)]
    assert START_SAGA not in holdable_message_types(noncritical)
    assert START_SAGA not in holdable_message_types(noncritical, batched=True)


def test_each_envelope_is_applied_on_its_own() -> None:
    outcomes = apply_nudge.apply(args=[[nudge("a"), nudge("b"), nudge("c")]]).get()

    assert outcomes == ["ok", "ok", "ok"]
    assert _effects() == ["a", "b", "c"]


def test_one_that_fails_for_now_goes_again_alone_after_the_others() -> None:
    redis_client().set(FLAKY_KEY, 1)  # "b" fails once
    first, flaky, last = nudge("a"), nudge("b", flaky=True), nudge("c")

    # Eagerly, Celery runs the retry in place and answers with its outcome: "b" alone, applied.
    assert apply_nudge.apply(args=[[first, flaky, last]]).get() == ["ok"]

    assert _effects() == ["a", "b", "c"]
    assert DeadLetter.objects.count() == 0


def test_one_that_keeps_failing_becomes_a_dead_letter_after_the_retries_and_the_others_are_applied() -> None:
    redis_client().set(FLAKY_KEY, 100)
    flaky = nudge("b", flaky=True)

    apply_nudge.apply(args=[[nudge("a"), flaky, nudge("c")]])

    assert _effects() == ["a", "c"]
    letter = DeadLetter.objects.get()
    assert (letter.consumer, letter.attempts, letter.envelope["message_id"]) == ("probe.nudge", 3, flaky["message_id"])


def test_one_that_cannot_be_applied_becomes_a_dead_letter_at_once_and_the_others_are_applied() -> None:
    poison = nudge("b", poison=True)

    outcomes = apply_nudge.apply(args=[[nudge("a"), poison, nudge("c")]]).get()

    assert outcomes == ["ok", "dead_lettered", "ok"]
    assert _effects() == ["a", "c"]
    assert DeadLetter.objects.get().envelope["message_id"] == poison["message_id"]


def test_an_envelope_that_does_not_parse_is_logged_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    broken = {**nudge("b"), "message_id": "not-a-uuid"}

    with caplog.at_level(logging.ERROR, logger="messaging.consumer"):
        outcomes = apply_nudge.apply(args=[[nudge("a"), broken, nudge("c")]]).get()

    assert outcomes == ["ok", "invalid", "ok"]
    assert _effects() == ["a", "c"]
    assert "does not parse" in caplog.text


def test_a_repeated_envelope_is_applied_once() -> None:
    envelope = nudge("a")

    assert apply_nudge.apply(args=[[envelope, envelope]]).get() == ["ok", "duplicate"]
    assert apply_nudge.apply(args=[envelope]).get() == "duplicate"  # a message of one, as a dead letter's retry sends
    assert _effects() == ["a"]
