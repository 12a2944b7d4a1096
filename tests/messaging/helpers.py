from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from messaging.api import outbox_append
from tests.probe.models import ProbeOutbox
from tests.probe.tasks import PING


def probe_envelope(message_type: str, key: str, **payload: object) -> dict:
    """An envelope as the relay publishes it, for one of the probe's consumers."""
    return {
        "message_id": str(uuid.uuid4()),
        "message_type": message_type,
        "version": 1,
        "source": "default",
        "aggregate_id": key,
        "sequence": 1,
        "correlation_id": "corr-1",
        "causation_id": "",
        "region": "eu",
        "created_at": timezone.now().isoformat(),
        "payload": payload,
        "headers": {},
    }


def ping_envelope(key: str = "k") -> dict:
    return probe_envelope(PING, key)


def write_row(message_type: str, key: str) -> ProbeOutbox:
    """A message for ``key`` (an order's id in its payload), committed to the probe's outbox."""
    with transaction.atomic(using="default"):
        return outbox_append(
            model=ProbeOutbox,
            message_type=message_type,
            aggregate_id=key,
            sequence=1,
            payload={"order_id": key},
            correlation_id="c",
            region="eu",
        )


class Clock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def add_pings(n: int, *, prefix: str = "p") -> list[ProbeOutbox]:
    with transaction.atomic(using="default"):
        if n == 1:
            return [
                outbox_append(
                    model=ProbeOutbox,
                    message_type=PING,
                    aggregate_id=f"{prefix}0",
                    sequence=1,
                    payload={},
                    correlation_id="c",
                )
            ]
        now = timezone.now()
        return ProbeOutbox.objects.bulk_create(
            ProbeOutbox(
                message_type=PING,
                aggregate_id=f"{prefix}{i}",
                sequence=1,
                payload={},
                correlation_id="c",
                created_at=now,
            )
            for i in range(n)
        )


def eventually(check: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def refuse_once(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
    """Make ``module.name`` (a way into the dead-letter store) fail once, as an unreachable store does, then work."""
    real, refusals = getattr(module, name), [1]

    def refusing_once(*args: object, **kwargs: object) -> object:
        if refusals:
            refusals.pop()
            raise DatabaseError("dead-letter store unreachable")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, refusing_once)
