"""Outbox writes, inbox deduplication, retry classification, countdown bounds."""

from __future__ import annotations

import random

import pytest
from django.db import transaction
from django.test import override_settings

from messaging import consumers
from messaging.api import (
    Envelope,
    OutboxMessage,
    TransientError,
    dead_letter_retry,
    drain_batch,
    outbox_append,
    redis_client,
)
from messaging.consumers import give_up
from messaging.models import DeadLetter
from messaging.outbox import OutboxOutsideTransaction
from messaging.retries import CountdownTooLong, bounded_countdown, max_countdown_s, retry_countdown
from tests.messaging.helpers import add_pings, ping_envelope, probe_envelope, refuse_once
from tests.probe.models import ProbeEffect, ProbeOutbox
from tests.probe.tasks import FAIL_KEY, PING, apply_ping


def test_rolled_back_business_transaction_publishes_nothing() -> None:
    with pytest.raises(RuntimeError), transaction.atomic(using="default"):
        outbox_append(
            model=ProbeOutbox, message_type=PING, aggregate_id="a", sequence=1, payload={}, correlation_id="c"
        )
        raise RuntimeError("business rule failed after the message was written")

    assert ProbeOutbox.objects.count() == 0
    assert drain_batch(ProbeOutbox, 100) == 0
    assert redis_client().llen("events") == 0


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_outbox_refuses_a_write_outside_a_transaction() -> None:
    with pytest.raises(OutboxOutsideTransaction):
        outbox_append(
            model=ProbeOutbox, message_type=PING, aggregate_id="a", sequence=1, payload={}, correlation_id="c"
        )
    assert ProbeOutbox.objects.count() == 0


def test_drain_publishes_in_creation_order_and_marks_rows() -> None:
    rows = add_pings(3) + add_pings(1, prefix="late")

    assert drain_batch(ProbeOutbox, 100) == 4

    assert ProbeOutbox.objects.filter(published_at__isnull=True).count() == 0
    assert redis_client().llen("events") == 4
    assert issubclass(ProbeOutbox, OutboxMessage)
    assert len({r.pk for r in rows}) == 4
    assert drain_batch(ProbeOutbox, 100) == 0


def test_a_message_redelivered_ten_times_has_one_effect() -> None:
    envelope = ping_envelope()

    outcomes = [apply_ping.apply(args=[envelope]).get() for _ in range(10)]

    assert outcomes == ["ok"] + ["duplicate"] * 9
    assert ProbeEffect.objects.filter(message_id=envelope["message_id"]).count() == 1


def test_transient_failures_dead_letter_after_exactly_the_retry_limit() -> None:
    redis_client().set(FAIL_KEY, "transient")
    envelope = ping_envelope("order-7")

    apply_ping.apply(args=[envelope])

    letter = DeadLetter.objects.get()
    assert (letter.consumer, letter.message_type, letter.attempts) == ("probe.apply", PING, 4)  # 1 + 3 retries
    assert letter.error_type == "messaging.contracts.TransientError"
    assert letter.error_message == "probe: dependency unavailable"
    assert "TransientError" in letter.traceback
    assert letter.envelope["message_id"] == envelope["message_id"]
    assert ProbeEffect.objects.count() == 0


def test_a_permanent_failure_dead_letters_at_once() -> None:
    redis_client().set(FAIL_KEY, "permanent")

    assert apply_ping.apply(args=[ping_envelope()]).get() == "dead_lettered"

    letter = DeadLetter.objects.get()
    assert (letter.attempts, letter.error_type) == (1, "builtins.ValueError")
    assert ProbeEffect.objects.count() == 0


def test_a_dead_letter_store_that_refuses_gets_the_message_again(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_once(monkeypatch, consumers, "dead_letter_record")
    redis_client().set(FAIL_KEY, "permanent")

    assert apply_ping.apply(args=[ping_envelope("order-9")]).get() == "dead_lettered"

    letter = DeadLetter.objects.get()  # recorded when the message came again, not lost with the refusal
    assert (letter.envelope["aggregate_id"], letter.attempts) == ("order-9", 2)


def test_failed_effect_rolls_back_the_inbox_row_so_a_retry_can_apply() -> None:
    envelope = ping_envelope()
    redis_client().set(FAIL_KEY, "permanent")
    apply_ping.apply(args=[envelope])
    redis_client().delete(FAIL_KEY)

    assert apply_ping.apply(args=[envelope]).get() == "ok"
    assert ProbeEffect.objects.filter(message_id=envelope["message_id"]).count() == 1


def test_retry_countdown_grows_with_jitter_and_stays_bounded() -> None:
    rng = random.Random(1)
    delays = [retry_countdown(n, rng=rng) for n in range(12)]
    assert all(0 < d <= 0.5 for d in delays)  # test settings: base 0.05 s, max 0.5 s
    assert delays[0] <= 0.05 and delays[3] > 0.05


@override_settings(MESSAGING_RETRY_MAX_S=10_000, CELERY_VISIBILITY_TIMEOUT_S=600)
def test_no_countdown_may_reach_the_visibility_timeout() -> None:
    assert max(retry_countdown(n) for n in range(30)) <= max_countdown_s() == 540
    with pytest.raises(CountdownTooLong):
        bounded_countdown(600)
    assert bounded_countdown(539) == 539


def test_a_dead_letter_store_that_refuses_after_the_last_retry_still_gets_the_message_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the retry limit the message is sent again all the same: acknowledged without a letter, it would be
    lost (Celery reads ``max_retries=None`` as the task's own limit, not as none)."""
    refuse_once(monkeypatch, consumers, "dead_letter_record")
    redis_client().set(FAIL_KEY, "transient")

    apply_ping.apply(args=[ping_envelope("order-10")], retries=3)  # its last retry (max_retries=3)

    letter = DeadLetter.objects.get()
    assert (letter.envelope["aggregate_id"], letter.attempts) == ("order-10", 5)


def test_a_dead_letter_of_a_regional_queue_is_sent_again_to_its_region_s_queue() -> None:
    """The saga's consumers name their queue ``saga.{region}``: the letter keeps the queue the message came
    from, and a retry goes there, where a worker takes it."""
    envelope = Envelope.model_validate({**probe_envelope(PING, "order-1"), "region": "us"})
    give_up(envelope, "orders.start_saga", "saga.{region}", TransientError("gateway down"), 31, None)
    letter = DeadLetter.objects.get()
    redis_client().delete("saga.us")

    dead_letter_retry(letter_id=letter.pk, actor="ops")

    assert letter.queue == "saga.us"
    assert redis_client().llen("saga.us") == 1
    # A letter recorded with the template, before the queue was resolved, goes there too.
    DeadLetter.objects.filter(pk=letter.pk).update(queue="saga.{region}")
    dead_letter_retry(letter_id=letter.pk, actor="ops")
    assert redis_client().llen("saga.us") == 2
    assert not redis_client().exists("saga.{region}")
