"""Calls to third parties (gateway, carrier, fraud provider) go through here:
a circuit breaker whose state all processes share through Redis, latency and
error metrics, and a span.

When the breaker is open a call fails fast with ``AdapterUnavailable`` (a
``TransientError``): the saga pauses and retries instead of waiting on a
dead service. Business answers (a declined card, an unserviceable address)
never count as failures.

The breaker costs no Redis round trip on the happy path: each process reads
the shared state at most every ``REFRESH_S`` and writes only on failure (and
on the first success after failures). Calls are never serialised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar

from django.conf import settings
from prometheus_client import Counter, Histogram

from messaging.contracts import BusinessError, TransientError
from messaging.redis import redis_client
from messaging.tracing import span

T = TypeVar("T")
log = logging.getLogger("messaging.adapters")
REFRESH_S = 0.5

ADAPTER_CALL_SECONDS = Histogram(
    "adapter_call_seconds",
    "Latency of calls to third parties",
    ["adapter", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ADAPTER_ERRORS = Counter("adapter_errors_total", "Failed calls to third parties", ["adapter", "error"])


class AdapterUnavailable(TransientError):
    """The circuit is open: the third party failed too often just now."""


@dataclass
class SharedBreaker:
    """Opens after ``fail_max`` consecutive failures (counted across processes)
    for ``reset_timeout`` seconds; then lets calls through again, and the next
    failure opens it at once until a success closes it."""

    name: str
    fail_max: int
    reset_timeout: float
    _failures: int = 0
    _opened_until: float = 0.0
    _read_at: float = field(default=-1.0)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def key(self) -> str:
        return f"breaker:{self.name}"

    def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._read_at < REFRESH_S:
            return
        failures, opened_until = redis_client().hmget(self.key, "failures", "opened_until")
        with self._lock:
            self._failures = int(failures or 0)
            self._opened_until = float(opened_until or 0.0)
            self._read_at = now

    def state(self) -> str:
        self._refresh(force=True)
        if time.time() < self._opened_until:
            return "open"
        return "half_open" if self._failures >= self.fail_max else "closed"

    def allow(self) -> bool:
        self._refresh()
        return time.time() >= self._opened_until

    def record_failure(self) -> None:
        client = redis_client()
        failures = int(client.hincrby(self.key, "failures", 1))
        if failures >= self.fail_max:
            client.hset(self.key, "opened_until", repr(time.time() + self.reset_timeout))
            log.warning("breaker %s open for %.0fs after %d failures", self.name, self.reset_timeout, failures)
        self._refresh(force=True)

    def record_success(self) -> None:
        if self._failures:
            redis_client().hset(self.key, mapping={"failures": 0, "opened_until": 0})
            self._refresh(force=True)


@cache
def breaker_for(adapter: str) -> SharedBreaker:
    fail_max, reset_timeout = settings.CIRCUIT_BREAKER.get(adapter, settings.CIRCUIT_BREAKER["default"])
    return SharedBreaker(name=adapter, fail_max=fail_max, reset_timeout=reset_timeout)


def call_adapter(adapter: str, operation: str, call: Callable[[], T]) -> T:
    """Run ``call`` against ``adapter`` behind its breaker, measured."""
    breaker = breaker_for(adapter)
    if not breaker.allow():
        ADAPTER_ERRORS.labels(adapter=adapter, error="circuit_open").inc()
        raise AdapterUnavailable(f"{adapter}: circuit open after repeated failures")
    started = time.perf_counter()
    with span(f"{adapter} {operation}", adapter=adapter, operation=operation):
        try:
            result = call()
        except BusinessError:
            breaker.record_success()
            raise
        except Exception as exc:
            ADAPTER_ERRORS.labels(adapter=adapter, error=type(exc).__name__).inc()
            breaker.record_failure()
            raise
        finally:
            ADAPTER_CALL_SECONDS.labels(adapter=adapter, operation=operation).observe(time.perf_counter() - started)
    breaker.record_success()
    return result


def breaker_state(adapter: str) -> str:
    return breaker_for(adapter).state()
