"""When orders arrive: phases of constant rate (open loop), evenly spaced or Poisson."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    name: str
    rate: float
    seconds: float

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.seconds <= 0:
            raise ValueError(f"phase {self.name!r}: rate and seconds must be positive")

    @property
    def orders(self) -> int:
        return max(1, round(self.rate * self.seconds))


@dataclass(frozen=True)
class Arrival:
    index: int
    offset: float
    phase: str


def parse_phases(text: str) -> tuple[Phase, ...]:
    """``"12x20,120x60,12x40"``: rate per second x seconds, one item per phase."""
    phases = []
    for number, item in enumerate(part.strip() for part in text.split(",") if part.strip()):
        rate, sep, seconds = item.partition("x")
        if not sep:
            raise ValueError(f"phase {item!r} is not RATExSECONDS")
        phases.append(Phase(name=f"{number + 1}:{float(rate):g}/s", rate=float(rate), seconds=float(seconds)))
    if not phases:
        raise ValueError("no phases given")
    return tuple(phases)


def spike_phases(*, base: float, factor: float, before: float, peak: float, after: float) -> tuple[Phase, ...]:
    """A step from ``base`` to ``factor`` x ``base`` and back."""
    return (
        Phase(name="base", rate=base, seconds=before),
        Phase(name="spike", rate=base * factor, seconds=peak),
        Phase(name="after", rate=base, seconds=after),
    )


def arrivals(phases: tuple[Phase, ...], *, poisson: bool = False, seed: int = 0) -> Iterator[Arrival]:
    """Every order's offset from the start of the run, phase after phase."""
    rng = random.Random(seed)
    index, start = 0, 0.0
    for phase in phases:
        offset = 0.0
        for n in range(phase.orders):
            offset = offset + rng.expovariate(phase.rate) if poisson else n / phase.rate
            if offset >= phase.seconds:
                break
            yield Arrival(index=index, offset=start + offset, phase=phase.name)
            index += 1
        start += phase.seconds


def planned_orders(phases: tuple[Phase, ...]) -> int:
    return sum(phase.orders for phase in phases)
