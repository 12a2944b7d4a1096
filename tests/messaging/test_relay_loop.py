"""The relay's loop: what it drains, and when, after notifications (its claims are tested against the database
elsewhere; here they are recorded)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from messaging import relay as relay_module
from messaging.relay import Relay

pytestmark = pytest.mark.django_db(databases=[])

SWEEP_NEVER_S = 3600.0


class _Recording(Relay):
    """A relay whose drains are recorded, not run; no listener, heartbeat or pruning."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.drains: list[tuple[float, set[str]]] = []
        self.drained = threading.Event()

    def start_listeners(self) -> None:
        pass

    def heartbeat(self) -> None:
        pass

    def prune(self) -> None:
        pass

    def drain_all(self, models=None) -> int:  # type: ignore[no-untyped-def, override]
        if models is not None:  # the first pass of the loop is a sweep of every outbox
            self.drains.append((time.monotonic(), {self._outboxes[model] for model in models}))
            self.drained.set()
        return 0


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[callable]:  # type: ignore[valid-type]
    monkeypatch.setattr(relay_module, "relay_sessions_commit_without_flush_wait", lambda aliases: None)
    started: list[tuple[_Recording, threading.Thread]] = []

    def start(gather_s: float) -> _Recording:
        relay = _Recording(poll_interval=SWEEP_NEVER_S, gather_s=gather_s)
        thread = threading.Thread(target=relay.run, daemon=True)
        thread.start()
        started.append((relay, thread))
        time.sleep(0.05)  # past the first sweep
        return relay

    yield start
    for relay, thread in started:
        relay.stop()
        thread.join(timeout=5)
        assert not thread.is_alive()


def test_the_first_notification_after_a_quiet_spell_is_claimed_at_once(running) -> None:  # type: ignore[no-untyped-def]
    relay = running(0.3)
    schema = sorted(set(relay._outboxes.values()))[0]
    time.sleep(0.3)  # quiet since the first sweep

    notified_at = time.monotonic()
    relay._mark_due({schema})

    assert relay.drained.wait(timeout=5)
    assert relay.drains[0][1] == {schema}
    assert relay.drains[0][0] - notified_at < 0.1


def test_while_busy_the_relay_claims_at_most_once_per_gather_and_the_commits_meanwhile_go_together(running) -> None:  # type: ignore[no-untyped-def]
    relay = running(0.3)
    schemas = sorted(set(relay._outboxes.values()))
    time.sleep(0.3)
    relay._mark_due({schemas[0]})
    assert relay.drained.wait(timeout=5)
    first_claim = relay.drains[0][0]

    relay._mark_due({schemas[1]})  # a moment after the claim
    time.sleep(0.05)
    relay._mark_due({schemas[2]})
    time.sleep(0.5)

    assert [due for _, due in relay.drains] == [{schemas[0]}, {schemas[1], schemas[2]}]
    assert relay.drains[1][0] - first_claim >= 0.3


def test_without_gathering_every_notification_is_claimed_at_once(running) -> None:  # type: ignore[no-untyped-def]
    relay = running(0.0)
    schemas = sorted(set(relay._outboxes.values()))

    for schema in schemas[:3]:
        notified_at = time.monotonic()
        relay.drained.clear()
        relay._mark_due({schema})
        assert relay.drained.wait(timeout=5)
        assert relay.drains[-1][0] - notified_at < 0.1

    assert [due for _, due in relay.drains] == [{schema} for schema in schemas[:3]]
