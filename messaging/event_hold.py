"""Holding back non-critical events while the saga is behind (DESIGN.md §5, degradation switches).

Every confirmed order also sends events to consumers off the critical path (fraud's customer history today;
loyalty, analytics and notifications tomorrow). Under a spike each of them costs the saga's workers a task,
its statements and the relay a publish: measured, a sixth of an order's CPU. So while the critical queues
(``MESSAGING_CRITICAL_QUEUES``: the saga's and the compensations') are behind, the relay leaves in their outbox
the messages whose every consumer is on a non-critical queue (``MESSAGING_NONCRITICAL_QUEUES``), marked
``held_at``. There they are durable, which a message parked on a broker without persistence would not be, and
cost nothing until the saga has caught up; then they go out oldest first, at a bounded rate, so that their
release does not put the saga behind again.

Holding starts when the oldest message waiting in a critical queue is older than ``hold_lag_s`` and stops when
it is younger than half of that (hysteresis: a lag hovering at the threshold does not flip the switch at every
look). The lag is read from the broker at most every ``check_every_s``; a relay's first look holds already at
half the threshold, so that a relay started in the middle of a spike does not let go what the others hold.

Messages whose every consumer is a batch consumer on a non-critical queue (``messaging.batch_consumers``) are
held always, not only under pressure: they are *gathered*. A confirmed order's event no longer costs a publish
and a task of its own; the relay lets the gathered rows go at most every ``release_every_s``, as messages of many
envelopes, within the same release rate.

Held events reach their consumers out of order with the events sent after the pressure ended: a consumer on a
non-critical queue must not depend on the order of its messages (fraud's history adds to counters).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from messaging.queues import queues_wait
from messaging.subscriptions import all_subscriptions, load_all_consumers

log = logging.getLogger("messaging.relay")


def critical_lag_s() -> float:
    """Seconds the oldest message waiting in a critical queue has waited (0 when they are empty)."""
    oldest = queues_wait(list(settings.MESSAGING_CRITICAL_QUEUES), what="the critical queues").oldest_at
    return 0.0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())


def holdable_message_types(noncritical_queues: tuple[str, ...], *, batched: bool = False) -> tuple[str, ...]:
    """Message types all of whose consumers are on non-critical queues (a type with any critical consumer is
    never held: holding it would hold that consumer too); ``batched``: and are batch consumers, so that their
    messages are gathered."""
    load_all_consumers()
    by_type: dict[str, bool] = {}
    for sub in all_subscriptions():
        fits = sub.queue in noncritical_queues and (bool(sub.batch) or not batched)
        by_type[sub.message_type] = by_type.get(sub.message_type, True) and fits
    return tuple(sorted(t for t, noncritical in by_type.items() if noncritical))


@cache
def gathered_message_types() -> frozenset[str]:
    """The types held always, to go out in batches. A writer marks their rows held as it writes them, so that they
    wake no relay (``notify_due_trigger_sql``). Decided once per process (subscriptions and settings do not change
    while it runs; a test that changes them calls ``gathered_message_types.cache_clear()``)."""
    if not settings.MESSAGING_GATHER_EVENTS:
        return frozenset()
    return frozenset(holdable_message_types(tuple(settings.MESSAGING_NONCRITICAL_QUEUES), batched=True))


@dataclass
class EventHold:
    """The relay's switch: which message types to hold now, and how many held rows it may let go."""

    holdable: tuple[str, ...]
    gathered: tuple[str, ...] = ()  # held always, to go out in batches
    hold_lag_s: float = 1.0
    release_per_s: float = 50.0
    check_every_s: float = 0.5
    burst_s: float = 1.0  # seconds' worth of releases that may go at once (the relay's poll interval, at least 1)
    release_every_s: float = 0.0  # at most one release in this time: what the gathered rows wait for company
    read_lag: Callable[[], float] = critical_lag_s
    clock: Callable[[], float] = time.monotonic
    holding: bool = False
    _checked_at: float = field(default=-math.inf, repr=False)
    _allowance: float = field(default=0.0, repr=False)
    _filled_at: float | None = field(default=None, repr=False)
    _released_at: float = field(default=-math.inf, repr=False)
    _held_under_pressure: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        self._held_under_pressure = tuple(sorted({*self.holdable, *self.gathered}))
        # A zero threshold would never let go (the lag is never below zero), a zero rate never release.
        if self.hold_lag_s <= 0 or self.release_per_s <= 0:
            raise ImproperlyConfigured(
                "MESSAGING_HOLD_EVENTS_LAG_S and MESSAGING_HELD_RELEASE_PER_S must be above 0 "
                "(MESSAGING_HOLD_EVENTS=0 switches holding off)"
            )

    @classmethod
    def from_settings(cls, *, poll_interval: float = 1.0) -> EventHold:
        noncritical = tuple(settings.MESSAGING_NONCRITICAL_QUEUES)
        holdable = holdable_message_types(noncritical) if settings.MESSAGING_HOLD_EVENTS else ()
        gathered = tuple(sorted(gathered_message_types()))
        # A row of a type that is not gathered costs its consumer a task: such types keep the bounded rate.
        all_gathered = set(holdable) <= set(gathered)
        return cls(
            holdable=holdable,
            gathered=gathered,
            release_every_s=settings.MESSAGING_HELD_RELEASE_EVERY_S,
            hold_lag_s=settings.MESSAGING_HOLD_EVENTS_LAG_S,
            release_per_s=settings.MESSAGING_GATHERED_RELEASE_PER_S
            if all_gathered
            else settings.MESSAGING_HELD_RELEASE_PER_S,
            check_every_s=settings.MESSAGING_HOLD_CHECK_EVERY_S,
            burst_s=max(1.0, poll_interval),
        )

    def types_to_hold(self) -> tuple[str, ...]:
        """The message types to keep in the outbox now: the gathered ones, and while the critical queues are
        behind every holdable one."""
        if not self.holdable:
            return self.gathered
        now = self.clock()
        if now - self._checked_at >= self.check_every_s:
            first = self._checked_at == -math.inf
            self._checked_at = now
            self._decide(self.read_lag(), first=first)
        return self._held_under_pressure if self.holding else self.gathered

    def _decide(self, lag: float, *, first: bool = False) -> None:
        if not self.holding and lag > (self.hold_lag_s / 2 if first else self.hold_lag_s):
            self.holding = True
            log.warning(
                "relay: holding back non-critical events (%s): the critical queues are %.1f s behind",
                ", ".join(self.holdable),
                lag,
            )
        elif self.holding and lag < self.hold_lag_s / 2:
            self.holding = False
            self._filled_at = None
            log.info("relay: letting held events go: the critical queues are %.1f s behind", lag)

    def release_quota(self) -> int:
        """How many held rows may go out now: none while holding, else what ``release_per_s`` has allowed since
        the last release, at most ``burst_s`` seconds' worth and at least one row (no burst after a long quiet
        spell, and a rate below one a second still releases); and none within ``release_every_s`` of the last
        release."""
        if self.holding:
            return 0
        now = self.clock()
        if now - self._released_at < self.release_every_s:
            return 0
        self._released_at = now
        most = max(1.0, self.release_per_s * self.burst_s)
        if self._filled_at is None:
            self._allowance = most
        else:
            self._allowance = min(most, self._allowance + (now - self._filled_at) * self.release_per_s)
        self._filled_at = now
        return int(self._allowance + 1e-9)  # 0.3 s at 10/s allows 3, not 2.999…

    def released(self, count: int) -> None:
        self._allowance = max(0.0, self._allowance - count)


def types_held_now() -> tuple[str, ...]:
    """The message types a relay would hold at this moment (one look at the critical queues): for anything else
    that drains an outbox, so that it does not publish what the relays hold back."""
    return EventHold.from_settings().types_to_hold()
