"""Calls to third parties (gateway, carrier, fraud provider) go through here:
a circuit breaker whose state all processes share through Redis, latency and
error metrics, and a span.

When the breaker is open a call fails fast with ``AdapterUnavailable`` (a
``TransientError``): the saga pauses and retries instead of waiting on a
dead service. Business answers (a declined card) are return values, never
failures, so they never open the breaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import TypeVar

import pybreaker
from django.conf import settings
from prometheus_client import Counter, Histogram

from messaging.contracts import BusinessError, TransientError
from messaging.redis import redis_client
from messaging.tracing import span

T = TypeVar("T")

ADAPTER_CALL_SECONDS = Histogram(
    "adapter_call_seconds",
    "Latency of calls to third parties",
    ["adapter", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ADAPTER_ERRORS = Counter("adapter_errors_total", "Failed calls to third parties", ["adapter", "error"])


class AdapterUnavailable(TransientError):
    """The circuit is open: the third party failed too often just now."""


@cache
def breaker_for(adapter: str) -> pybreaker.CircuitBreaker:
    fail_max, reset_timeout = settings.CIRCUIT_BREAKER.get(adapter, settings.CIRCUIT_BREAKER["default"])
    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, redis_client(), namespace=f"breaker:{adapter}")
    return pybreaker.CircuitBreaker(
        fail_max=fail_max, reset_timeout=reset_timeout, state_storage=storage, name=adapter, exclude=[BusinessError]
    )


def call_adapter(adapter: str, operation: str, call: Callable[[], T]) -> T:
    """Run ``call`` against ``adapter`` behind its breaker, measured."""
    started = time.perf_counter()
    with span(f"{adapter} {operation}", adapter=adapter, operation=operation):
        try:
            return breaker_for(adapter).call(call)
        except pybreaker.CircuitBreakerError as exc:
            ADAPTER_ERRORS.labels(adapter=adapter, error="circuit_open").inc()
            raise AdapterUnavailable(f"{adapter}: circuit open after repeated failures") from exc
        except Exception as exc:
            ADAPTER_ERRORS.labels(adapter=adapter, error=type(exc).__name__).inc()
            raise
        finally:
            ADAPTER_CALL_SECONDS.labels(adapter=adapter, operation=operation).observe(time.perf_counter() - started)


def breaker_state(adapter: str) -> str:
    return str(breaker_for(adapter).current_state)
