"""What the generator learns about each order, and the running counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orders.models import RESTING_STATES

RESTING = frozenset(str(state) for state in RESTING_STATES)
LOST = "lost"


@dataclass(frozen=True)
class Resting:
    """The first state the order came to rest in, and when (the server's clock)."""

    state: str
    at: float


def resting_of(body: dict[str, Any] | None) -> Resting | None:
    """From an order as the API shows it: its first resting transition, if any."""
    entries = [entry for entry in (body or {}).get("history", []) if entry.get("to_state") in RESTING]
    if not entries:
        return None
    first = min(entries, key=lambda entry: _epoch(entry["at"]))
    return Resting(state=first["to_state"], at=_epoch(first["at"]))


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class OrderRecord:
    index: int
    phase: str
    kind: str
    key: str
    lag: float = 0.0
    sent_at: float = 0.0
    sent_mono: float = 0.0
    answered_after: float | None = None
    order_id: str | None = None
    created_at: float | None = None
    state: str | None = None
    final_at: float | None = None
    seen_at: float | None = None
    attempts: int = 0
    polls: int = 0
    failure: str | None = None

    @property
    def accepted(self) -> bool:
        return self.order_id is not None

    @property
    def finished(self) -> bool:
        return self.state is not None and self.state != LOST

    @property
    def accepted_at(self) -> float | None:
        return None if self.answered_after is None else self.sent_at + self.answered_after

    @property
    def latency(self) -> float | None:
        """POST sent → the order's first resting transition."""
        return None if self.final_at is None else max(0.0, self.final_at - self.sent_at)

    @property
    def saga_latency(self) -> float | None:
        """Order accepted → first resting transition, both on the server's clock."""
        if self.final_at is None or self.created_at is None:
            return None
        return max(0.0, self.final_at - self.created_at)

    def settle(self, body: dict[str, Any] | None, *, seen_at: float) -> bool:
        """Take what ``body`` says; True once the order rests."""
        if body and body.get("created_at") and self.created_at is None:
            self.created_at = _epoch(body["created_at"])
        resting = resting_of(body)
        if resting is None:
            return False
        self.state, self.final_at, self.seen_at = resting.state, resting.at, seen_at
        return True


@dataclass
class Tally:
    """Counts shown live and reported at the end."""

    planned: int = 0
    sent: int = 0
    accepted: int = 0
    finished: int = 0
    gets: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def in_flight(self) -> int:
        return self.accepted - self.finished

    def error(self, kind: str) -> None:
        self.errors[kind] += 1

    def finish(self, record: OrderRecord) -> None:
        self.finished += 1
        self.outcomes[record.state or LOST] += 1
