"""The figures of a load run: rates, latencies, outcomes and errors."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from orders.loadgen.mix import EXPECTED_STATE
from orders.loadgen.records import LOST, OrderRecord
from orders.loadgen.runner import LoadResult


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in (0, 100]; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100.0 * len(ordered))) - 1]


@dataclass(frozen=True)
class Latency:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        def ms(q: float) -> float:
            return round(percentile(seconds, q) * 1000.0, 1)

        return cls(count=len(seconds), p50_ms=ms(50), p95_ms=ms(95), p99_ms=ms(99), max_ms=ms(100))


RECOVERY_TARGET_S = 2.0
RECOVERY_WINDOW_S = 5.0


def recovered_after_s(
    records: list[OrderRecord],
    *,
    since: float,
    target_s: float = RECOVERY_TARGET_S,
    window_s: float = RECOVERY_WINDOW_S,
) -> float | None:
    """Seconds after ``since`` from which the p99 POST → final of the orders sent in every ``window_s``
    window stays within ``target_s``; None when even the last window is over it.

    An order never accepted (refused on every attempt) or never finished counts as over the target:
    for its client the platform did not recover.
    """
    windows: dict[int, list[float]] = {}
    for record in records:
        if record.sent_at < since:
            continue
        latency = record.latency if record.finished else None
        windows.setdefault(int((record.sent_at - since) // window_s), []).append(
            math.inf if latency is None else latency
        )
    recovered: int | None = None
    for index in sorted(windows, reverse=True):
        if percentile(windows[index], 99) > target_s:
            break
        recovered = index
    return None if recovered is None else recovered * window_s


@dataclass(frozen=True)
class PhaseFigures:
    name: str
    sent: int
    finished: int
    sent_per_s: float
    accepted_per_s: float
    finished_per_s: float
    latency: Latency


@dataclass(frozen=True)
class LoadReport:
    observation: str
    planned: int
    sent: int
    accepted: int
    not_accepted: int
    finished: int
    unfinished: int
    lost: int
    sent_per_s: float
    accepted_per_s: float
    finished_per_s: float
    latency: Latency
    saga_latency: Latency
    post_latency: Latency
    detection_delay: Latency
    outcomes: dict[str, int]
    unexpected: dict[str, int]
    errors: dict[str, int]
    gets_per_order: float
    schedule_lag: Latency
    generator_cpu_s: float
    generator_wall_s: float
    phases: list[PhaseFigures] = field(default_factory=list)
    # With phases: seconds into the last phase until p99 POST → final is back within 2 s for good.
    recovered_after_s: float | None = None

    @property
    def generator_cpu_share(self) -> float:
        return self.generator_cpu_s / self.generator_wall_s if self.generator_wall_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        figures = asdict(self)
        figures["generator_cpu_share_of_one_core"] = round(self.generator_cpu_share, 3)
        return figures


def _rate(count: int, start: float | None, end: float | None) -> float:
    if not count or start is None or end is None:
        return 0.0
    return round(count / max(end - start, 1e-3), 2)


def _phase_figures(name: str, records: list[OrderRecord]) -> PhaseFigures:
    accepted = [r for r in records if r.accepted]
    finished = [r for r in records if r.finished]
    first_sent = min((r.sent_at for r in records), default=None)
    return PhaseFigures(
        name=name,
        sent=len(records),
        finished=len(finished),
        sent_per_s=_rate(len(records), first_sent, max((r.sent_at for r in records), default=None)),
        accepted_per_s=_rate(len(accepted), first_sent, max((r.accepted_at or 0.0 for r in accepted), default=None)),
        finished_per_s=_rate(len(finished), first_sent, max((r.final_at or 0.0 for r in finished), default=None)),
        latency=Latency.of([r.latency for r in finished if r.latency is not None]),
    )


def _unexpected(records: list[OrderRecord]) -> dict[str, int]:
    counts = Counter(f"{r.kind} → {r.state}" for r in records if r.finished and r.state != EXPECTED_STATE[r.kind])
    return dict(counts.most_common())


def build_report(result: LoadResult) -> LoadReport:
    records = result.records
    accepted = [r for r in records if r.accepted]
    finished = [r for r in records if r.finished]
    whole = _phase_figures("all", records)
    phase_names = list(dict.fromkeys(r.phase for r in records))
    return LoadReport(
        observation=result.plan.describe_observation(),
        planned=result.plan.planned,
        sent=len(records),
        accepted=len(accepted),
        not_accepted=len(records) - len(accepted),
        finished=len(finished),
        unfinished=sum(1 for r in accepted if r.state is None),
        lost=sum(1 for r in accepted if r.state == LOST),
        sent_per_s=whole.sent_per_s,
        accepted_per_s=whole.accepted_per_s,
        finished_per_s=whole.finished_per_s,
        latency=whole.latency,
        saga_latency=Latency.of([r.saga_latency for r in finished if r.saga_latency is not None]),
        post_latency=Latency.of([r.answered_after for r in accepted if r.answered_after is not None]),
        detection_delay=Latency.of([r.seen_at - r.final_at for r in finished if r.seen_at and r.final_at]),
        outcomes=dict(Counter(r.state or LOST for r in finished).most_common()),
        unexpected=_unexpected(records),
        errors=dict(result.tally.errors.most_common()),
        gets_per_order=round(result.tally.gets / len(accepted), 2) if accepted else 0.0,
        schedule_lag=Latency.of([r.lag for r in records]),
        generator_cpu_s=round(result.cpu_s, 2),
        generator_wall_s=round(result.wall_s, 2),
        phases=[_phase_figures(name, [r for r in records if r.phase == name]) for name in phase_names]
        if len(phase_names) > 1
        else [],
        recovered_after_s=_recovery(records, phase_names),
    )


def _recovery(records: list[OrderRecord], phase_names: list[str]) -> float | None:
    if len(phase_names) < 2:
        return None
    last = [r for r in records if r.phase == phase_names[-1]]
    return recovered_after_s(last, since=min(r.sent_at for r in last))
