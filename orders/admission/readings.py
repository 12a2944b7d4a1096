"""What a web process learns from its readings of a region's saga queue: how fast it drains, whether it has been
busy, and how many orders every process announced lately (orders/admission/gate.py reads them)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from django.conf import settings

MIN_DRAIN_SPAN_S = 2.0
# A queue counts as backlogged only when seen so at this many readings at least: two readings of a quiet process
# that each found a message or two waiting say little.
MIN_BACKLOGGED_READINGS = 5
# How long a placed order may be on its way to the queue: announced at the placing process's next reading
# (ADMISSION_CHECK_EVERY_S, 0.1 s) and published by the relay tens of ms after its commit (a claim every 50 ms
# while busy). Orders placed longer ago are taken to show in the queue's length; those placed since may show there
# too, which reads a busy queue's lag that much longer.
IN_FLIGHT_S = 0.25
# Readings this close count as IN_FLIGHT_S apart (0.35 - 0.1 is 0.24999999999999997).
_EPSILON_S = 1e-6


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
    itself: its one caller measures under the gate's lock."""

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

    def longest_since(self, region: str, since: float) -> int:
        """The most messages a reading since ``since`` found in the region's queue."""
        return max((depth for at, _, depth in self._readings.get(region, ()) if at >= since), default=0)


class Announcements:
    """Each region's announced counter, from this process's readings: how many orders every process placed
    lately. Not locked itself: its one caller reads under the gate's lock."""

    def __init__(self) -> None:
        self._readings: dict[str, deque[tuple[float, int]]] = {}

    def lately(self, region: str, *, announced: int, at: float) -> float:
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
