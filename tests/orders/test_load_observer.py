"""When the load generator looks at accepted orders, and how: alone or looked up together."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from orders.loadgen.client import Answer
from orders.loadgen.observer import Observer, PollPolicy
from orders.loadgen.records import LOST, OrderRecord, Tally

POLICY = PollPolicy(first_poll=0.5, settled_share=0.9, min_samples=20)


def test_without_enough_history_an_order_is_first_looked_at_first_poll_after_it_was_sent() -> None:
    assert POLICY.first_due(sent=100.0, accepted=100.01, recent_settle_s=[3.0] * 19) == 100.5


def test_an_order_is_not_looked_at_before_most_recent_orders_had_come_to_rest() -> None:
    recent = [0.1 * i for i in range(1, 101)]  # 0.1 … 10 s after acceptance

    assert POLICY.expected_settle_s(recent) == pytest.approx(9.0, abs=0.02)  # nine in ten of them had by then
    assert POLICY.first_due(sent=100.0, accepted=100.2, recent_settle_s=recent) == pytest.approx(109.2, abs=0.02)


def test_an_order_accepted_after_retries_waits_from_its_acceptance_not_from_its_first_send() -> None:
    recent = [2.0] * 50

    # Sent at 100, refused, accepted on a retry at 112: due two seconds after that, not at once.
    assert POLICY.first_due(sent=100.0, accepted=112.0, recent_settle_s=recent) == 114.0


def test_a_quick_platform_keeps_the_first_poll_floor() -> None:
    assert POLICY.first_due(sent=100.0, accepted=100.01, recent_settle_s=[0.04] * 200) == 100.5


def test_every_share_of_settled_orders_can_be_asked_for() -> None:
    recent = [0.1 * i for i in range(1, 101)]

    assert PollPolicy(settled_share=1.0).expected_settle_s(recent) == pytest.approx(9.9, abs=0.02)  # 99th
    assert PollPolicy(settled_share=0.0).expected_settle_s(recent) == pytest.approx(0.2, abs=0.02)  # 1st percentile


class _Platform:
    """The lookup as the web answers it, for orders whose state the test sets; records each request."""

    def __init__(self, *, fail_first: int = 0) -> None:
        self.states: dict[str, str] = {}
        self.lookups: list[list[str]] = []
        self._fail = fail_first

    async def fetch_many(self, order_ids: list[str]) -> Answer:
        self.lookups.append(order_ids)
        if self._fail:
            self._fail -= 1
            return Answer(status=503, error="http_503")
        shown = [_body(order_id, self.states[order_id]) for order_id in order_ids if order_id in self.states]
        missing = [order_id for order_id in order_ids if order_id not in self.states]
        return Answer(status=200, body={"orders": shown, "not_found": missing})


def _body(order_id: str, state: str) -> dict[str, Any]:
    history = [{"from_state": "", "to_state": "pending", "at": "2026-12-03T10:00:00+00:00"}]
    if state != "pending":
        history.append({"from_state": "pending", "to_state": state, "at": "2026-12-03T10:00:01.250000+00:00"})
    return {"id": order_id, "state": state, "created_at": "2026-12-03T10:00:00+00:00", "history": history}


def _record(index: int) -> OrderRecord:
    return OrderRecord(
        index=index,
        phase="p",
        kind="k",
        key=f"key-{index}",
        order_id=f"order-{index}",
        sent_mono=time.monotonic() - 1.0,
        answered_after=0.01,
    )


def _observe(platform: _Platform, records: list[OrderRecord], policy: PollPolicy, *, until: int) -> list[str]:
    rested: list[OrderRecord] = []

    async def main() -> None:
        observer = Observer(platform, policy, Tally(), rested.append)  # type: ignore[arg-type]
        for record in records:
            observer.watch(record)
        observer.start()
        try:
            deadline = time.monotonic() + 10.0
            while len(rested) < until and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            await observer.stop()

    asyncio.run(main())
    return [record.order_id or "" for record in rested]


LOOKUP = PollPolicy(first_poll=0.0, orders_per_get=3, lookups_per_s=50.0, pollers=1)


def test_orders_due_are_looked_up_together_oldest_first_and_each_settles_from_its_own_body() -> None:
    platform = _Platform()
    records = [_record(i) for i in range(7)]
    platform.states = {f"order-{i}": "confirmed" for i in range(7) if i != 4}
    platform.states["order-5"] = "pending"

    rested = _observe(platform, records, LOOKUP, until=6)

    assert platform.lookups[:3] == [["order-0", "order-1", "order-2"], ["order-3", "order-4", "order-5"], ["order-6"]]
    assert sorted(rested) == ["order-0", "order-1", "order-2", "order-3", "order-4", "order-6"]
    assert records[4].state == LOST  # accepted, then unknown to the platform
    assert (records[0].state, records[0].polls) == ("confirmed", 1)
    assert records[0].final_at == pytest.approx(records[0].created_at + 1.25)  # the server's own timestamps
    assert records[5].state is None  # still moving: looked at again later, alone
    assert records[5].polls >= 1


def test_a_failed_lookup_is_counted_and_its_orders_are_looked_up_again() -> None:
    platform = _Platform(fail_first=1)
    records = [_record(i) for i in range(2)]
    platform.states = {"order-0": "rejected", "order-1": "confirmed"}

    rested = _observe(platform, records, LOOKUP, until=2)

    assert platform.lookups == [["order-0", "order-1"], ["order-0", "order-1"]]
    assert sorted(rested) == ["order-0", "order-1"]
    assert [record.polls for record in records] == [2, 2]  # the failed look counts, as a failed GET does


def test_one_order_per_get_still_fetches_each_order_alone() -> None:
    class _OneByOne(_Platform):
        async def fetch(self, order_id: str) -> Answer:
            self.lookups.append([order_id])
            return Answer(status=200, body=_body(order_id, self.states[order_id]))

    platform = _OneByOne()
    platform.states = {"order-0": "confirmed", "order-1": "confirmed"}

    rested = _observe(platform, [_record(0), _record(1)], PollPolicy(first_poll=0.0, pollers=1), until=2)

    assert platform.lookups == [["order-0"], ["order-1"]]
    assert sorted(rested) == ["order-0", "order-1"]


def test_with_many_pollers_the_orders_due_still_go_in_one_lookup_not_one_each() -> None:
    platform = _Platform()
    records = [_record(i) for i in range(5)]
    platform.states = {record.order_id or "": "confirmed" for record in records}

    rested = _observe(platform, records, PollPolicy(first_poll=0.0, orders_per_get=100, pollers=8), until=5)

    assert platform.lookups == [[record.order_id for record in records]]
    assert len(rested) == 5
