"""The gate's decisions: each region's saga lag, read at most every ``ADMISSION_CHECK_EVERY_S``, and the orders
and reads it admits or refuses (orders/admission/__init__.py says how)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.utils import timezone

from messaging.api import queue_waits
from orders.admission.on_their_way import OnTheirWay, Ticket
from orders.admission.readings import MIN_DRAIN_SPAN_S, Announcements, Drain, DrainRates
from orders.contracts import START_SAGA
from orders.metrics import REQUESTS_SHED

MAX_RETRY_AFTER_S = 60
# A backlogged queue whose workers took almost nothing is read at one message a second at least, so that
# Retry-After stays an estimate (at most MAX_RETRY_AFTER_S).
MIN_BACKLOGGED_RATE_PER_S = 1.0
# Orders on their way count while the region's queue was seen holding a reading interval's work within this long:
# under a wave of retries a queue the workers had just emptied filled again with orders the next readings could
# not show yet (accepted orders' p99 2.4 s counting them only while the last reading found messages, against
# 2.0-2.2 s; docs/performance.md, 8 Dec). A message or two between the relay and a worker that keeps up is not it.
BUSY_WITHIN_S = 1.0
# A reading older than this is not shown as a metric (admission_saga_lag_seconds): the process served no orders lately.
SHOWN_FOR_S = 10.0


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
    # The rate each region's wait was read at, for regions whose queue was busy: this process's orders on their
    # way count into their lag at that rate.
    busy_rate_by_region: dict[str, float] = field(default_factory=dict)


_lock = threading.Lock()
_last: Lag | None = None
_rates = DrainRates()
_announcements = Announcements()
_on_their_way = OnTheirWay()
_clock = time.monotonic


def saga_lag_s() -> dict[str, float]:
    """Seconds the saga is behind in each region (0 when nothing waits), as of the last reading (taken now if it
    is older than ``ADMISSION_CHECK_EVERY_S``)."""
    return _reading().by_region


def last_saga_lag_s() -> dict[str, float]:
    """``saga_lag_s`` as of the last reading, without taking one; nothing when there is none of the last
    ``SHOWN_FOR_S``."""
    last = _last
    if last is None or _clock() - last.read_at > SHOWN_FOR_S:
        return {}
    return last.by_region


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
    """The region's lag as of the last reading, with this process's orders on their way if its queue was busy.
    (A thread that read the last reading while another took a new one may miss the orders that one announced,
    for one Redis round trip.)"""
    reading = _reading()
    lag = reading.by_region.get(region, 0.0)
    rate = reading.busy_rate_by_region.get(region)
    return lag if rate is None else lag + _on_their_way.count(region, now=_clock()) / rate


def _measure_lag(*, read_at: float) -> Lag:
    wall = timezone.now()
    lag, busy_rates = {}, {}
    # Every region in one round trip, announcing the orders placed since the last reading (lost if Redis cannot be
    # reached: nothing is known to wait then either).
    readings = queue_waits(START_SAGA, settings.REGIONS, announce=_on_their_way.take(now=read_at))
    counted_at = _clock()  # when the counts were read, not when this process asked to read them
    for region in settings.REGIONS:
        waiting = readings[region]
        oldest = waiting.oldest_at
        waited = max(0.0, (wall - oldest).total_seconds()) if oldest is not None else 0.0
        if waiting.taken is None:  # the broker could not be read: nothing is known to wait
            lag[region] = waited
            continue
        drain = _rates.observe(region, taken=waiting.taken, depth=waiting.depth, at=counted_at)
        announced = (
            0.0
            if waiting.announced is None
            else _announcements.lately(region, announced=waiting.announced, at=counted_at)
        )
        rate = _drain_rate(drain)
        if _busy(region, drain, rate, at=counted_at):
            busy_rates[region] = rate
            lag[region] = max(waited, (waiting.depth + announced) / rate)
        else:
            lag[region] = max(waited, waiting.depth / rate)
    return Lag(by_region=lag, read_at=read_at, busy_rate_by_region=busy_rates)


def _busy(region: str, drain: Drain | None, rate: float, *, at: float) -> bool:
    """Whether orders on their way to the region's queue will wait there: a drain was measured, and a reading
    within ``BUSY_WITHIN_S`` found the queue holding a reading interval's work at the rate it is read at.
    Otherwise the workers keep up (or no drain was measured yet, and the least rate assumed would read orders on
    their way as a wait they may not have), and orders on their way will be taken as they come."""
    if drain is None:
        return False
    held = _rates.longest_since(region, at - BUSY_WITHIN_S)
    return held > 0 and held >= rate * settings.ADMISSION_CHECK_EVERY_S


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
    """Forget the last reading, the measured rates and announcements, and the orders on their way (tests; a
    process that starts over)."""
    global _last, _rates, _announcements, _on_their_way
    with _lock:
        _last = None
        _rates = DrainRates()
        _announcements = Announcements()
        _on_their_way = OnTheirWay()


def admit_orders_somewhere() -> None:
    """Refuse at once when every region is too far behind (the request's region need not be read)."""
    lag, threshold = min(saga_lag_s().values(), default=0.0), settings.ADMISSION_ORDER_LAG_S
    if lag > threshold:
        _refuse(lag, threshold, "place_order", f"orders are {lag:.0f}s behind in every region; try again later")


def admit_order(region: str) -> Ticket:
    """Refuse a new order of ``region`` while its lag is over the threshold. An order admitted is on its way until
    its request is answered (``order_answered``), or, once placed (``order_placed``), for a quarter second more."""
    lag, threshold = _region_lag(region), settings.ADMISSION_ORDER_LAG_S
    if lag > threshold:
        _refuse(lag, threshold, "place_order", f"orders in {region} are {lag:.0f}s behind; try again later")
    return _on_their_way.admitted(region)


def order_placed(ticket: Ticket) -> None:
    """The admitted request placed a new order (not a repeat of one placed before): it was committed now."""
    _on_their_way.placed(ticket, at=_clock())


def order_answered(ticket: Ticket) -> None:
    """The admitted request was answered; if it placed no order, nothing of it is on its way."""
    _on_their_way.answered(ticket)


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
