"""Admission control: refuse work with 503 before a backlog tips the platform over (DESIGN.md §5).

The pressure signal is the saga's lag in a region, in seconds: how long the
oldest ``StartSaga`` still waiting in that region's queue has waited, or, if
longer, how long the queue would take to drain (the age alone reacts too late
when orders arrive much faster than they are served: by the time the oldest has
waited 10 s, minutes of work may be queued behind it). The drain rate is
measured: the workers count what they take off each queue (messaging/drain.py),
and each process reads the region's count with its queue, over the last
``ADMISSION_DRAIN_WINDOW_S``. ``ADMISSION_SAGA_RATE_PER_S`` is the least rate
assumed before a rate is measured, and while a queue that ran dry in the window
drains slower (its rate is only what arrived). A queue that held messages at
every reading of the window (five at least) while its counter moved drained as
fast as the workers could take it: its rate is read as measured, down to one a
second (a slow machine). A counter that stood still says nothing: workers down
show in the oldest message's age. New orders of a
region are refused while its lag exceeds ``ADMISSION_ORDER_LAG_S``: an order
accepted into a longer queue could not finish in time, and accepting it would
only make the queue longer. A relay that is behind does not count: that means
the broker is down, and the outbox is there to keep accepting orders then; a
broker that cannot be read counts as no lag, for the same reason. Low-priority
reads (stock levels) are refused
earlier, at ``ADMISSION_READ_LAG_S`` in any region, to leave the web tier to
orders. Reading an order, cancelling one and carrier events are never shed.
Each process reads the lag at most every ``ADMISSION_CHECK_EVERY_S``.

A queue's length shows an admitted order only once the relay has published its
``StartSaga``, and a process admits on its last reading until the next: under
a wave of retries a region's queue grew to twice the threshold's worth between
readings. So while a region's queue is busy (seen holding messages within
``BUSY_WITHIN_S``), the orders placed in the last ``IN_FLIGHT_S`` count as
waiting, shown there yet or not: each process adds those it placed since its
last reading, and announces them at its next one, in the same round trip
(``queue_waits(announce=…)``); every process reads all processes'
announcements from the counter. An order
counts once it is placed (``202``, not a replay of an earlier request): a
request refused by authentication or validation counts for nothing.

A refusal must cost far less than an acceptance, or shedding only moves the
overload to the web tier (measured: a 503 given after authentication and body
validation cost about as much CPU as a 202). ``AdmissionGate``
(orders/http/admission_gate.py) therefore decides before anything else runs,
from the body's ``region`` alone.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.utils import timezone

from messaging.api import queue_waits
from orders.contracts import START_SAGA
from orders.metrics import REQUESTS_SHED

MAX_RETRY_AFTER_S = 60
MIN_DRAIN_SPAN_S = 2.0
# A queue counts as backlogged only when seen so at this many readings at least: two readings of a quiet process
# that each found a message or two waiting say little.
MIN_BACKLOGGED_READINGS = 5
# A backlogged queue whose workers took almost nothing is read at one message a second at least, so that
# Retry-After stays an estimate (at most MAX_RETRY_AFTER_S).
MIN_BACKLOGGED_RATE_PER_S = 1.0
# How long a placed order may be on its way to the queue: announced at the placing process's next reading
# (ADMISSION_CHECK_EVERY_S, 0.1 s), published by the relay tens of ms after its commit (a claim every 50 ms while
# busy). Orders placed longer ago are taken to show in the queue's length; those placed since may show there too,
# which reads a busy queue's lag that much longer (at most what arrives in a quarter second).
IN_FLIGHT_S = 0.25
# Orders on their way count while the region's queue was seen holding messages within this long: under a wave of
# retries a queue the workers had just emptied filled again with orders the next readings could not show yet
# (accepted orders' p99 2.4 s counting them only while the queue held messages at the last reading, against
# 2.0-2.2 s always; docs/performance.md, 8 Dec).
BUSY_WITHIN_S = 1.0
# Readings this close count as IN_FLIGHT_S apart (0.35 - 0.1 is 0.24999999999999997).
_EPSILON_S = 1e-6


class Overloaded(Exception):
    """The platform is behind: come back after ``retry_after`` seconds."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class Lag:
    by_region: dict[str, float]
    read_at: float
    # The rate each region's wait was read at, for regions whose queue was busy: orders placed since count into
    # their lag at that rate.
    busy_rate_by_region: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Drain:
    """Messages a region's workers took off its queue per second over the window, and whether the queue was seen
    backlogged: holding messages at every one of at least ``MIN_BACKLOGGED_READINGS`` readings while the counter
    moved. Then that rate is what the workers could do, not only what arrived; a counter that stood still says
    nothing (workers down, whose oldest message soon ages, or workers that cannot count)."""

    per_s: float
    backlogged: bool


class DrainRates:
    """Each region's drain rate, from this process's readings of its taken counter over a window. Not locked
    itself: its one caller measures under ``_lock``."""

    def __init__(self) -> None:
        self._readings: dict[str, deque[tuple[float, int, int]]] = {}

    @staticmethod
    def min_span_s() -> float:
        """Readings closer than this say too little: the workers add their counts every quarter second, so two
        readings a second apart can see 1.25 s of counts, and a rate read too high lets through orders that
        should have been refused."""
        return max(MIN_DRAIN_SPAN_S, settings.ADMISSION_DRAIN_WINDOW_S / 2)

    def observe(self, region: str, *, taken: int, depth: int, at: float) -> Drain | None:
        """Record a reading (the counter, and the queue's length then); returns the drain over the window, None
        until it spans enough."""
        readings = self._readings.setdefault(region, deque())
        if readings and taken < readings[-1][1]:  # the counter began again (Redis restarted): so do we
            readings.clear()
        readings.append((at, taken, depth))
        while at - readings[0][0] > settings.ADMISSION_DRAIN_WINDOW_S:
            readings.popleft()
        first_at, first, _ = readings[0]
        if at - first_at < self.min_span_s():
            return None
        backlogged = (
            len(readings) >= MIN_BACKLOGGED_READINGS and taken > first and all(seen > 0 for _, _, seen in readings)
        )
        return Drain(per_s=(taken - first) / (at - first_at), backlogged=backlogged)

    def held_messages_since(self, region: str, since: float) -> bool:
        """Whether a reading since ``since`` found the region's queue holding messages."""
        return any(at >= since and depth > 0 for at, _, depth in self._readings.get(region, ()))


class Announcements:
    """Each region's announced counter, from this process's readings: how many orders every process placed in
    the last ``IN_FLIGHT_S``. Not locked itself: its one caller reads under ``_lock``."""

    def __init__(self) -> None:
        self._readings: dict[str, deque[tuple[float, int]]] = {}

    def in_flight(self, region: str, *, announced: int, at: float) -> float:
        """Record a reading of the counter; returns how many orders were announced in the last ``IN_FLIGHT_S``:
        what it grew by since the last reading at least that old, in proportion when that reading is older (a
        process that was idle reads the counter seldom), and since the oldest kept until there is one that old."""
        readings = self._readings.setdefault(region, deque())
        if readings and announced < readings[-1][1]:  # the counter began again (Redis restarted): so do we
            readings.clear()
        readings.append((at, announced))
        while len(readings) > 1 and at - readings[1][0] >= IN_FLIGHT_S - _EPSILON_S:
            readings.popleft()
        since, base = readings[0]
        grown = announced - base
        return grown * IN_FLIGHT_S / (at - since) if at - since > IN_FLIGHT_S + _EPSILON_S else float(grown)


class Placed:
    """Orders this process placed since it last announced them, by region, with when each was admitted. An
    order placed more than ``IN_FLIGHT_S`` ago is neither counted nor announced (a process that went quiet
    announces at its next request, maybe seconds later: by then those orders show in the queue)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: dict[str, list[float]] = {}

    def add(self, region: str, *, admitted_at: float) -> None:
        with self._lock:
            self._times.setdefault(region, []).append(admitted_at)

    def count(self, region: str, *, now: float) -> int:
        """Orders of ``region`` placed in the last ``IN_FLIGHT_S`` and not announced yet."""
        with self._lock:
            return sum(1 for at in self._times.get(region, ()) if now - at <= IN_FLIGHT_S)

    def take(self, *, now: float) -> dict[str, int]:
        """The counts to announce; counting starts again from none."""
        with self._lock:
            times, self._times = self._times, {}
        return {region: n for region, ats in times.items() if (n := sum(1 for at in ats if now - at <= IN_FLIGHT_S))}


_lock = threading.Lock()
_last: Lag | None = None
_rates = DrainRates()
_announcements = Announcements()
_placed = Placed()
_clock = time.monotonic


def saga_lag_s() -> dict[str, float]:
    """Seconds the saga is behind in each region (0 when nothing waits), as of the last reading."""
    return _reading().by_region


def _reading() -> Lag:
    global _last
    now = _clock()
    last = _last
    if last is not None and now - last.read_at < settings.ADMISSION_CHECK_EVERY_S:
        return last
    with _lock:
        if _last is not None and now - _last.read_at < settings.ADMISSION_CHECK_EVERY_S:
            return _last
        _last = _measure_lag(read_at=now)
        return _last


def _region_lag(region: str) -> float:
    """The region's lag as of the last reading, with the orders this process placed since it if its queue was
    busy then."""
    reading = _reading()
    lag = reading.by_region.get(region, 0.0)
    rate = reading.busy_rate_by_region.get(region)
    return lag if rate is None else lag + _placed.count(region, now=_clock()) / rate


def _measure_lag(*, read_at: float) -> Lag:
    wall = timezone.now()
    lag, busy_rates = {}, {}
    # Every region in one round trip, announcing the orders placed since the last reading.
    readings = queue_waits(START_SAGA, settings.REGIONS, announce=_placed.take(now=read_at))
    counted_at = _clock()  # when the counts were read, not when this process asked to read them
    for region in settings.REGIONS:
        waiting = readings[region]
        oldest = waiting.oldest_at
        waited = max(0.0, (wall - oldest).total_seconds()) if oldest is not None else 0.0
        if waiting.taken is None:  # the broker could not be read: nothing is known to wait
            lag[region] = waited
            continue
        drain = _rates.observe(region, taken=waiting.taken, depth=waiting.depth, at=counted_at)
        in_flight = (
            0.0
            if waiting.announced is None
            else _announcements.in_flight(region, announced=waiting.announced, at=counted_at)
        )
        rate = _drain_rate(drain)
        if not _rates.held_messages_since(region, counted_at - BUSY_WITHIN_S):
            # The workers keep up: orders on their way will be taken as they come, and the least rate would read
            # them as a wait they do not have.
            lag[region] = waited
            continue
        busy_rates[region] = rate
        lag[region] = max(waited, (waiting.depth + in_flight) / rate)
    return Lag(by_region=lag, read_at=read_at, busy_rate_by_region=busy_rates)


def _drain_rate(drain: Drain | None) -> float:
    """The rate a queue's length is divided by. Measured on a queue that stayed backlogged, it is what the workers
    can do, even below the least rate: at the least rate, a machine whose workers took 20 sagas a second from each
    region admitted orders that then waited 3-5 s (docs/performance.md, 7 Dec, 22:52)."""
    if drain is None:
        return settings.ADMISSION_SAGA_RATE_PER_S
    if drain.backlogged:
        return max(drain.per_s, MIN_BACKLOGGED_RATE_PER_S)
    return max(drain.per_s, settings.ADMISSION_SAGA_RATE_PER_S)


def forget_lag() -> None:
    """Forget the last reading, the measured rates and announcements, and the orders placed since the last
    reading (tests; a process that starts over)."""
    global _last, _rates, _announcements
    with _lock:
        _last = None
        _rates = DrainRates()
        _announcements = Announcements()
        _placed.take(now=_clock())


def admit_orders_somewhere() -> None:
    """Refuse at once when every region is too far behind (the request's region need not be read)."""
    lag, threshold = min(saga_lag_s().values(), default=0.0), settings.ADMISSION_ORDER_LAG_S
    if lag > threshold:
        _refuse(lag, threshold, "place_order", f"orders are {lag:.0f}s behind in every region; try again later")


def admit_order(region: str) -> float:
    """Refuse a new order of ``region`` while its lag is over the threshold; returns when it was admitted, for
    ``order_placed``."""
    lag, threshold = _region_lag(region), settings.ADMISSION_ORDER_LAG_S
    if lag > threshold:
        _refuse(lag, threshold, "place_order", f"orders in {region} are {lag:.0f}s behind; try again later")
    return _clock()


def order_placed(region: str, *, admitted_at: float) -> None:
    """An order admitted at ``admitted_at`` was placed (not a replay): it counts into its region's lag until the
    queue shows it."""
    if region in settings.REGIONS:
        _placed.add(region, admitted_at=admitted_at)


def admit_read(route: str) -> None:
    lag, threshold = max(saga_lag_s().values(), default=0.0), settings.ADMISSION_READ_LAG_S
    if lag > threshold:
        _refuse(lag, threshold, route, f"the platform is {lag:.0f}s behind; reads of this kind are paused")


def _refuse(lag: float, threshold: float, route: str, why: str) -> None:
    REQUESTS_SHED.labels(route=route).inc()
    raise Overloaded(why, _retry_after(lag, threshold))


def _retry_after(lag: float, threshold: float) -> int:
    """The lag over the threshold, at least a second: about when a backlog that drains is back under it, were
    nothing more to arrive (a queue nobody takes gives no better answer). A client refused just over it comes
    back after a second, not after the whole backlog: near capacity the platform refuses a few orders now and
    then, and their wait for a retry was what put p99 over 2 s."""
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(lag - threshold)))


@register(Tags.compatibility)
def check_admission_settings(**_: object) -> list[CheckMessage]:
    """The gate divides by the least drain rate and measures over its window: refuse settings that would make it
    divide by zero, or never measure."""
    errors: list[CheckMessage] = []
    if settings.ADMISSION_SAGA_RATE_PER_S <= 0:
        errors.append(
            Error("ADMISSION_SAGA_RATE_PER_S must be above 0: it is the least drain rate assumed", id="orders.E001")
        )
    if settings.ADMISSION_DRAIN_WINDOW_S < 2 * MIN_DRAIN_SPAN_S:
        errors.append(
            Error(
                f"ADMISSION_DRAIN_WINDOW_S must be at least {2 * MIN_DRAIN_SPAN_S:g} s: a rate is measured over "
                f"half the window or {MIN_DRAIN_SPAN_S:g} s, whichever is longer",
                id="orders.E002",
            )
        )
    return errors
