"""The kernel's own tasks: the benchmark's no-op and its pickup-recording consumer."""

from __future__ import annotations

import time

from config.celery import app
from messaging.consumers import consumer
from messaging.contracts import Envelope
from messaging.redis import redis_client

BENCH_MESSAGE_TYPE = "bench.Noop"
BENCH_QUEUE = "bench"
BENCH_CONSUMER = "messaging.bench_consume"
NOOP_TASK = "messaging.bench_noop"
PICKUP_KEY = "bench:pickups"


@app.task(name=NOOP_TASK, ignore_result=True)  # routed to BENCH_QUEUE by CELERY_TASK_ROUTES
def bench_noop() -> None:
    """Plain Celery's reference: a task that does nothing."""


@consumer(message_type=BENCH_MESSAGE_TYPE, name=BENCH_CONSUMER, queue=BENCH_QUEUE)
def bench_consume(envelope: Envelope) -> None:
    """Record when the message reached this consumer, by its sequence; the benchmark knows when it committed."""
    redis_client().rpush(PICKUP_KEY, f"{envelope.sequence} {time.time():.6f}")
