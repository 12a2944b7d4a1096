"""The load generator's spike-recovery figure: when p99 POST → final is back within 2 s for good."""

from __future__ import annotations

import math

from orders.loadgen.records import OrderRecord
from orders.loadgen.report import recovered_after_s


def order(sent_at: float, latency: float | None, *, accepted: bool = True) -> OrderRecord:
    record = OrderRecord(index=0, phase="after", kind="ok", key="k", sent_at=sent_at)
    if accepted:
        record.order_id = "o"
    if latency is not None:
        record.state = "confirmed"
        record.final_at = sent_at + latency
    return record


def window(start: float, latencies: list[float | None], **kwargs: bool) -> list[OrderRecord]:
    return [order(start + i * 0.01, latency, **kwargs) for i, latency in enumerate(latencies)]


def test_recovery_starts_at_the_first_window_after_which_every_window_is_within_target() -> None:
    records = [
        *window(0.0, [9.0] * 50),  # the backlog
        *window(5.0, [0.5] * 50),  # a good window ...
        *window(10.0, [0.5] * 49 + [3.0] * 2),  # ... then one over: recovery is not yet for good
        *window(15.0, [0.4] * 50),
        *window(20.0, [0.3] * 50),
    ]

    assert recovered_after_s(records, since=0.0) == 15.0


def test_an_order_refused_on_every_attempt_counts_as_over_the_target() -> None:
    records = [*window(0.0, [0.2] * 50), *window(5.0, [0.2] * 10), *window(5.5, [None] * 5, accepted=False)]

    assert recovered_after_s(records, since=0.0) is None


def test_all_windows_within_target_means_recovered_at_once_and_earlier_orders_are_ignored() -> None:
    records = [*window(-10.0, [math.inf] * 5), *window(0.0, [1.9] * 100), *window(5.0, [0.1] * 10)]

    assert recovered_after_s(records, since=0.0) == 0.0
