"""The relay's loop: what it drains, and when, after notifications (its claims are tested against the database
elsewhere; here they are recorded). The windows are long (1 s) against the box's scheduling, so that "at once"
(well under half a window) and "after the window" cannot be confused on a loaded machine."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured

from messaging import relay as relay_module
from messaging.models import OutboxMessage
from messaging.relay import Relay

pytestmark = pytest.mark.django_db(databases=[])

SWEEP_NEVER_S = 3600.0
WINDOW_S = 1.0
AT_ONCE_S = WINDOW_S / 2


class _Recording(Relay):
    """A relay whose drains are recorded, not run; no listener, heartbeat or pruning."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.drains: list[tuple[float, set[str]]] = []
        self.drained = threading.Event()
        self.swept = threading.Event()

    def start_listeners(self) -> None:
        pass

    def heartbeat(self) -> None:
        pass

    def prune(self) -> None:
        pass

    def drain_all(self, models: Iterable[type[OutboxMessage]] | None = None) -> int:
        if models is None:  # the loop's first pass is a sweep of every outbox
            self.swept.set()
        else:
            self.drains.append((time.monotonic(), {self._outboxes[model] for model in models}))
            self.drained.set()
        return 0

    def schemas(self) -> list[str]:
        return sorted(set(self._outboxes.values()))


Start = Callable[[float], tuple[_Recording, threading.Thread]]


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    monkeypatch.setattr(relay_module, "relay_sessions_commit_without_flush_wait", lambda aliases: None)
    started: list[tuple[_Recording, threading.Thread]] = []

    def start(gather_s: float) -> tuple[_Recording, threading.Thread]:
        relay = _Recording(poll_interval=SWEEP_NEVER_S, gather_s=gather_s)
        thread = threading.Thread(target=relay.run, daemon=True)
        thread.start()
        started.append((relay, thread))
        assert relay.swept.wait(timeout=10)
        return relay, thread

    yield start
    for relay, thread in started:
        relay.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()


def _claim_after(relay: _Recording, schemas: set[str]) -> float:
    """Notify ``schemas`` and return how long the relay took to claim them."""
    relay.drained.clear()
    notified_at = time.monotonic()
    relay._mark_due(schemas)
    assert relay.drained.wait(timeout=10)
    return relay.drains[-1][0] - notified_at


def test_the_first_notification_after_a_quiet_spell_is_claimed_at_once(running: Start) -> None:
    relay, _ = running(WINDOW_S)
    time.sleep(WINDOW_S)  # quiet since the first sweep

    assert _claim_after(relay, {relay.schemas()[0]}) < AT_ONCE_S
    assert relay.drains[0][1] == {relay.schemas()[0]}


def test_while_busy_the_relay_claims_once_per_window_and_the_commits_meanwhile_go_together(running: Start) -> None:
    relay, _ = running(WINDOW_S)
    first, second, third = relay.schemas()[:3]
    time.sleep(WINDOW_S)
    _claim_after(relay, {first})
    claimed_at = relay._last_claim_at

    relay.drained.clear()
    relay._mark_due({second})  # a moment after the claim: waits for the window
    relay._mark_due({third})
    assert relay.drained.wait(timeout=10)

    assert [due for _, due in relay.drains] == [{first}, {second, third}]
    assert relay.drains[1][0] - claimed_at >= WINDOW_S


def test_without_gathering_every_notification_is_claimed_at_once(running: Start) -> None:
    relay, _ = running(0.0)
    schemas = relay.schemas()[:3]

    assert all(_claim_after(relay, {schema}) < AT_ONCE_S for schema in schemas)
    assert [due for _, due in relay.drains] == [{schema} for schema in schemas]


def test_a_relay_told_to_stop_while_it_gathers_stops_without_claiming(running: Start) -> None:
    relay, thread = running(10.0)

    relay._mark_due({relay.schemas()[0]})  # the first sweep claimed a moment ago: this waits 10 s
    time.sleep(0.2)
    relay.stop()
    thread.join(timeout=5)

    assert not thread.is_alive()
    assert relay.drains == []


@pytest.mark.parametrize("gather_s", [-0.01, math.inf, math.nan])
def test_a_window_that_is_negative_or_not_finite_is_refused_at_start(gather_s: float) -> None:
    with pytest.raises(ImproperlyConfigured, match="gather window"):
        Relay(gather_s=gather_s)
