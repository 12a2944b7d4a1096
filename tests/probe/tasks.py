"""A consumer whose failures tests switch on and off through Redis."""

from __future__ import annotations

import time

from messaging.api import Envelope, TransientError, batch_consumer, consumer, redis_client
from tests.probe.models import ProbeEffect, ProbeInbox

PING = "probe.Ping"
FAIL_KEY = "probe:fail"  # "transient" or "permanent"
STARTED_KEY = "probe:started"  # message id -> consumer start time (for latency)


@consumer(message_type=PING, name="probe.apply", queue="events", inbox=ProbeInbox, max_retries=3)
def apply_ping(envelope: Envelope) -> None:
    redis_client().hsetnx(STARTED_KEY, str(envelope.message_id), repr(time.time()))
    mode = redis_client().get(FAIL_KEY)
    if mode == b"transient":
        raise TransientError("probe: dependency unavailable")
    if mode == b"permanent":
        raise ValueError("probe: cannot apply this message")
    ProbeEffect.objects.create(message_id=envelope.message_id, key=envelope.aggregate_id)


TALLY = "probe.Tally"
TALLY_BATCHES_KEY = "probe:tally-batches"  # one entry per handler call: how many envelopes it was given
FLAKY_KEY = "probe:flaky"  # how many more times an envelope marked "flaky" fails for a while


@batch_consumer(message_type=TALLY, name="probe.tally", queue="events", inbox=ProbeInbox, max_batch=3, max_retries=2)
def apply_tallies(envelopes: list[Envelope]) -> None:
    redis_client().rpush(TALLY_BATCHES_KEY, len(envelopes))
    if redis_client().get(FAIL_KEY) == b"transient":
        raise TransientError("probe: dependency unavailable")
    for envelope in envelopes:
        if envelope.payload.get("poison"):
            raise ValueError(f"probe: cannot apply {envelope.aggregate_id}")
        if envelope.payload.get("flaky") and redis_client().decr(FLAKY_KEY) >= 0:
            raise TransientError(f"probe: {envelope.aggregate_id} unavailable for now")
        ProbeEffect.objects.create(message_id=envelope.message_id, key=envelope.aggregate_id)
