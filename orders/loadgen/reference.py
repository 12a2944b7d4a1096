"""The reference: how fast the platform's own saga worker runs plain Celery no-op tasks.

``count`` no-ops (``messaging.bench_noop``) are queued on a queue of their own
while the worker ignores it; then the worker is told to consume that queue
too, and the clock runs until the queue is empty and nothing is left
unacknowledged. Same process, same pool, same prefetch and late acks as for
orders: the ratio orders/s ÷ tasks/s says what each order costs on top of
Celery itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from config.celery import app
from messaging.api import redis_client

NOOP_TASK = "messaging.bench_noop"
REFERENCE_QUEUE = "bench.reference"
UNACKED_KEY = "unacked"
POLL_S = 0.002


class ReferenceUnavailable(RuntimeError):
    """The worker cannot run the no-op task."""


@dataclass(frozen=True)
class ReferenceResult:
    tasks: int
    publish_per_s: float
    tasks_per_s: float


def require_noop_task(worker_names: list[str]) -> None:
    registered = app.control.inspect(destination=worker_names, timeout=5.0).registered() or {}
    missing = [name for name in worker_names if NOOP_TASK not in registered.get(name, [])]
    if missing:
        raise ReferenceUnavailable(f"{NOOP_TASK} is not registered on {', '.join(missing)}")


def publish_noops(count: int) -> float:
    """Queue ``count`` no-ops on the reference queue; return how many per second were published."""
    redis_client().delete(REFERENCE_QUEUE)
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            app.send_task(NOOP_TASK, queue=REFERENCE_QUEUE, producer=producer)
    return count / (time.perf_counter() - started)


def _unacked_reference_messages() -> int:
    entries = redis_client().hvals(UNACKED_KEY)
    return sum(1 for raw in entries if json.loads(raw)[-1] == REFERENCE_QUEUE)


def _await_empty(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while redis_client().llen(REFERENCE_QUEUE) or _unacked_reference_messages():
        if time.monotonic() > deadline:
            raise ReferenceUnavailable(f"the no-op tasks were not all run within {timeout:.0f}s")
        time.sleep(POLL_S)


def run_noops(count: int, worker_names: list[str], timeout: float = 300.0) -> ReferenceResult:
    require_noop_task(worker_names)
    published = publish_noops(count)
    started = time.perf_counter()
    app.control.add_consumer(REFERENCE_QUEUE, destination=worker_names, reply=True, timeout=5.0)
    try:
        _await_empty(timeout)
        elapsed = time.perf_counter() - started
    finally:
        app.control.cancel_consumer(REFERENCE_QUEUE, destination=worker_names, reply=True, timeout=5.0)
        redis_client().delete(REFERENCE_QUEUE)
    return ReferenceResult(tasks=count, publish_per_s=published, tasks_per_s=count / elapsed)
