"""Circuit breakers around third parties: shared state, fail fast, business
refusals never trip them."""

from __future__ import annotations

import time

import pytest

from messaging.adapters import AdapterUnavailable, breaker_state, call_adapter
from messaging.api import BusinessError, TransientError


def failing() -> None:
    raise TransientError("gateway timed out")


def refusing() -> None:
    raise BusinessError("card_declined")


def test_breaker_opens_after_repeated_failures_and_fails_fast() -> None:
    for _ in range(5):
        with pytest.raises(TransientError):
            call_adapter("payment_gateway", "authorize", failing)
    assert breaker_state("payment_gateway") == "open"  # the fifth failure tripped it

    calls = []
    with pytest.raises(AdapterUnavailable, match="circuit open"):
        call_adapter("payment_gateway", "authorize", lambda: calls.append(1))
    assert calls == []  # never reached the gateway


def test_business_refusals_do_not_trip_the_breaker() -> None:
    for _ in range(10):
        with pytest.raises(BusinessError):
            call_adapter("carrier", "create_label", refusing)
    assert breaker_state("carrier") == "closed"
    assert call_adapter("carrier", "create_label", lambda: "label") == "label"


def test_breaker_state_is_shared_through_redis() -> None:
    from messaging.redis import redis_client

    redis_client().hset("breaker:carrier", mapping={"failures": 5, "opened_until": time.time() + 30})
    assert breaker_state("carrier") == "open"  # opened by another process
    with pytest.raises(AdapterUnavailable):
        call_adapter("carrier", "create_label", lambda: "label")


def test_a_success_after_the_timeout_closes_it_again() -> None:
    from messaging.redis import redis_client

    redis_client().hset("breaker:carrier", mapping={"failures": 5, "opened_until": time.time() - 1})
    assert breaker_state("carrier") == "half_open"
    assert call_adapter("carrier", "create_label", lambda: "label") == "label"
    assert breaker_state("carrier") == "closed"
