"""How fast the consumers take messages off each queue.

Each worker process counts the messages it takes from each queue and adds its counts to one Redis counter per
queue every ``FLUSH_EVERY_S`` (one pipelined round trip for all it counted meanwhile), so that any process
can tell how fast a queue drains from two readings of its counter (``messaging.queues.queues_wait`` reads it
with the queue's length). The admission gate (orders/admission/) turns a region's saga queue into seconds
of wait with it, instead of with a constant rate that fits one box on one day.

A count is a gauge, not a record: one that cannot be written (Redis away) is dropped with a warning (once a
minute at most), and the counts of the last ``FLUSH_EVERY_S`` before a process stops are never written. Readers
take a counter that went down (Redis restarted) as a new start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
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
    """Messages this process took off each queue. A daemon thread of the process's own (started with its first
    count, again in a forked child) adds what was counted to Redis every ``flush_every_s``, one round trip for
    every queue; it sends nothing while nothing was counted."""

    def __init__(self, *, flush_every_s: float = FLUSH_EVERY_S) -> None:
        self.flush_every_s = flush_every_s
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._flusher_pid: int | None = None

    def count(self, queue: str) -> None:
        with self._lock:
            self._pending[queue] += 1
            if self._flusher_pid == os.getpid():
                return
            self._flusher_pid = os.getpid()
        self._start_flusher()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if pending:
            _add(pending)

    def _start_flusher(self) -> None:
        try:
            threading.Thread(target=self._flush_forever, name="drain-counts", daemon=True).start()
        except RuntimeError as exc:  # no thread to be had now: the next count tries again
            with self._lock:
                self._flusher_pid = None
            log.warning("cannot start the thread that writes the drain counters: %s", exc)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.flush_every_s)
            self.flush()


WARN_EVERY_S = 60.0
_warned_at = -float("inf")


def _add(pending: Mapping[str, int]) -> None:
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            for queue, taken in pending.items():
                pipe.incrby(taken_key(queue), taken)
            pipe.execute()
    except redis.RedisError as exc:
        _warn_dropped(sum(pending.values()), exc)


def _warn_dropped(count: int, exc: Exception) -> None:
    """A counter that stands still reads as a queue nobody takes: say why, once a minute at most."""
    global _warned_at
    now = time.monotonic()
    if now - _warned_at >= WARN_EVERY_S:
        _warned_at = now
        log.warning("could not add %d taken message(s) to the drain counters: %s", count, exc)


_COUNTER = TakenCounter()


def message_taken(delivery_info: Mapping[str, Any] | None) -> None:
    """Count a message a consumer took, by the queue it came from (its routing key: messages go through the
    default exchange, ``messaging.publisher``). Never raises: a count is not worth a message."""
    queue = (delivery_info or {}).get("routing_key")
    if queue:
        try:
            _COUNTER.count(queue)
        except Exception:  # the consumer goes on whatever happens to a gauge
            log.exception("could not count a message taken off %s", queue)
