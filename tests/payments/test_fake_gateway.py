"""The fake gateway remembers each idempotency key's first answer, as a real gateway does on its side."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from messaging.api import redis_client, set_fault_profile
from payments.contracts import GatewayUnavailable
from payments.gateway import FakePaymentGateway


@pytest.fixture
def gateway() -> Iterator[FakePaymentGateway]:
    set_fault_profile("payment_gateway")
    yield FakePaymentGateway()
    set_fault_profile("payment_gateway")


def _authorize(gateway: FakePaymentGateway, key: str, token: str = "tok_ok"):  # type: ignore[no-untyped-def]
    return gateway.authorize(idempotency_key=key, token=token, amount_minor=4_200, currency="EUR")


def test_a_repeated_key_gets_the_first_answer() -> None:
    gateway = FakePaymentGateway()
    key = f"{uuid.uuid4()}:authorize"

    first = _authorize(gateway, key)
    again = _authorize(gateway, key, token="tok_declined")  # a different body: the key decides

    assert first.approved and first.reference.startswith("auth_")
    assert again == first


def test_the_answer_is_remembered_for_a_day() -> None:
    key = f"{uuid.uuid4()}:authorize"
    _authorize(FakePaymentGateway(), key)

    ttl = redis_client().ttl(f"fakegw:{key}")

    assert FakePaymentGateway.KEY_TTL_S - 5 <= ttl <= FakePaymentGateway.KEY_TTL_S


def test_a_timeout_fails_a_new_key_and_remembers_nothing(gateway: FakePaymentGateway) -> None:
    key = f"{uuid.uuid4()}:authorize"
    set_fault_profile("payment_gateway", timeout_rate=1.0)

    with pytest.raises(GatewayUnavailable):
        _authorize(gateway, key)

    assert redis_client().get(f"fakegw:{key}") is None


def test_a_remembered_key_is_answered_even_while_calls_time_out(gateway: FakePaymentGateway) -> None:
    key = f"{uuid.uuid4()}:authorize"
    first = _authorize(gateway, key)
    set_fault_profile("payment_gateway", timeout_rate=1.0)

    assert _authorize(gateway, key) == first


def test_a_call_that_loses_the_race_answers_what_the_winner_stored() -> None:
    gateway = FakePaymentGateway()
    key = f"{uuid.uuid4()}:capture"
    winner = gateway.capture(idempotency_key=key, authorization_ref="auth_1", amount_minor=1, currency="EUR")

    # The loser decided on its own (a capture refused) before it could store it: the stored answer wins.
    loser = gateway.capture(idempotency_key=key, authorization_ref="auth_x1", amount_minor=1, currency="EUR")

    assert winner.approved
    assert loser == winner


class CountingRedis:
    """The Redis client, counting the commands sent through it."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        command = getattr(redis_client(), name)

        def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.commands.append(name)
            return command(*args, **kwargs)

        return counted


def test_a_call_costs_one_round_trip_to_its_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = CountingRedis()
    monkeypatch.setattr("payments.gateway.redis_client", lambda: counting)
    gateway = FakePaymentGateway()
    key = f"{uuid.uuid4()}:authorize"

    first = _authorize(gateway, key)
    again = _authorize(gateway, key)

    assert again == first
    assert counting.commands == ["set", "set"]
