"""How fast the consumers take messages off each queue.

Each worker process counts the messages it takes from each queue and adds its counts to one Redis counter per
queue within ``FLUSH_EVERY_S`` (one pipelined round trip for all it counted meanwhile), so that any process
can tell how fast a queue drains from two readings of its counter (``messaging.queues.queues_wait`` reads it
with the queue's length). The admission gate (orders/admission.py) turns a region's saga queue into seconds
of wait with it, instead of with a constant rate that fits one box on one day.

A count is a gauge, not a record: one that cannot be written (Redis away) is dropped, and the counts of the last
``FLUSH_EVERY_S`` before a process stops are never written. Readers take a counter that went down (Redis
restarted) as a new start.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

import redis

from messaging.redis import redis_client

log = logging.getLogger("messaging.drain")

FLUSH_EVERY_S = 0.25


def taken_key(queue: str) -> str:
    return f"queue:taken:{queue}"


class TakenCounter:
    """Messages this process took off each queue, added to Redis within ``flush_every_s`` of the first of them:
    a timer writes what was counted meanwhile, one round trip for every queue."""

    def __init__(self, *, flush_every_s: float = FLUSH_EVERY_S) -> None:
        self.flush_every_s = flush_every_s
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._armed = False

    def count(self, queue: str) -> None:
        with self._lock:
            self._pending[queue] += 1
            if self._armed:
                return
            self._armed = True
        timer = threading.Timer(self.flush_every_s, self.flush)
        timer.daemon = True
        timer.start()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending, self._armed = self._pending, Counter(), False
        if pending:
            _add(pending)


def _add(pending: Mapping[str, int]) -> None:
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            for queue, taken in pending.items():
                pipe.incrby(taken_key(queue), taken)
            pipe.execute()
    except redis.RedisError as exc:
        log.debug("could not add %d taken message(s) to the drain counters: %s", sum(pending.values()), exc)


_COUNTER = TakenCounter()


def message_taken(delivery_info: Mapping[str, Any] | None) -> None:
    """Count a message a consumer took, by the queue it came from (its routing key: messages go through the
    default exchange, ``messaging.publisher``)."""
    queue = (delivery_info or {}).get("routing_key")
    if queue:
        _COUNTER.count(queue)
