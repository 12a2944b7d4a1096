"""This web process's own orders on their way to a region's saga queue, which no reading shows yet."""

from __future__ import annotations

import threading

from orders.admission.readings import IN_FLIGHT_S


class Ticket:
    """One admitted request, until its answer: ``OnTheirWay.placed`` or ``OnTheirWay.answered``."""

    __slots__ = ("region",)

    def __init__(self, region: str) -> None:
        self.region = region


class OnTheirWay:
    """Orders admitted and still being placed (counted by this process only: the request may yet be refused by
    authentication or validation, or be a repeat), and orders placed in the last ``IN_FLIGHT_S`` not yet
    announced to the other processes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._placing: set[Ticket] = set()
        self._placed: dict[str, list[float]] = {}

    def admitted(self, region: str) -> Ticket:
        ticket = Ticket(region)
        with self._lock:
            self._placing.add(ticket)
        return ticket

    def placed(self, ticket: Ticket, *, at: float) -> None:
        """The admitted request placed a new order, committed at ``at``."""
        with self._lock:
            if ticket in self._placing:
                self._placing.discard(ticket)
                self._placed.setdefault(ticket.region, []).append(at)

    def answered(self, ticket: Ticket) -> None:
        """The request was answered: if it placed no order, it is on its way no more."""
        with self._lock:
            self._placing.discard(ticket)

    def count(self, region: str, *, now: float) -> int:
        """Orders of ``region`` being placed, or placed in the last ``IN_FLIGHT_S`` and not announced yet."""
        with self._lock:
            placing = sum(1 for ticket in self._placing if ticket.region == region)
            return placing + sum(1 for at in self._placed.get(region, ()) if now - at <= IN_FLIGHT_S)

    def take(self, *, now: float) -> dict[str, int]:
        """The orders placed to announce, by region; those still being placed stay."""
        with self._lock:
            placed, self._placed = self._placed, {}
        return {region: n for region, ats in placed.items() if (n := sum(1 for at in ats if now - at <= IN_FLIGHT_S))}
