"""A consumer whose failures tests switch on and off through Redis."""

from __future__ import annotations

import time

from messaging.api import Envelope, TransientError, consumer, redis_client
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
