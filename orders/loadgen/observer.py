"""Finding out when accepted orders come to rest, with a bounded number of GETs.

Orders are polled oldest-due first, each no sooner than ``first_poll`` after
it was sent, nor before most orders accepted lately had come to rest (the
``settled_share`` quantile of their accepted → rest times, which the server's
clock gives), and then less and less often as it ages. Without that second
bound, under an overload each order was looked at 1.7 times on average: one
accepted after retries of a refused POST was due at once, and the saga was
seconds behind. Latency does not depend on how
often we look: it is read from the order's history (the server's timestamp
of its first resting transition), so polling rarely keeps the platform's
extra load small without making the figures coarser.

How: with ``orders_per_get`` above one (the default of both commands), the
orders due are looked up together (``GET /api/v1/orders?id=…``, at most that
many per request), at most ``lookups_per_s`` requests a second, by at most
``LOOKUP_POLLERS`` at a time: a GET per order was about 1.9 ms of the web's CPU
per order and 0.8 ms of the generator's, measurement rather than work. With
one, each order gets its own GET, and all GETs together stay under
``polls_per_s`` and under twice the rate at which polls find orders at rest
(plus a floor): a platform that falls behind is not also flooded with GETs
for orders it has not reached yet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from orders.http.schemas import MAX_ORDERS_PER_LOOKUP
from orders.loadgen.client import PlatformClient
from orders.loadgen.records import LOST, OrderRecord, Tally

MIN_INTERVAL_S = 0.1
MAX_ORDERS_PER_GET = MAX_ORDERS_PER_LOOKUP
# Lookups in flight at most: one waits for its slot of the rate before it takes the orders due, so that an
# order is not held by a poller waiting for its turn while younger ones go out.
LOOKUP_POLLERS = 2
RETRY_AFTER_ERROR_S = 1.0
CONTROL_EVERY_S = 0.5
HIT_WINDOW_S = 2.0
SETTLE_SAMPLES = 200


@dataclass(frozen=True)
class PollPolicy:
    first_poll: float = 0.5
    max_interval: float = 5.0
    polls_per_s: float = 200.0
    min_polls_per_s: float = 5.0
    pollers: int = 8
    settled_share: float = 0.9
    min_samples: int = 20
    orders_per_get: int = 1
    lookups_per_s: float = 5.0

    @property
    def looks_up(self) -> bool:
        return self.orders_per_get > 1

    def next_interval(self, age: float) -> float:
        return min(self.max_interval, max(MIN_INTERVAL_S, age * 0.5))

    def first_due(self, *, sent: float, accepted: float, recent_settle_s: Iterable[float]) -> float:
        """When to look at an order accepted at ``accepted`` (sent at ``sent``) for the first time, given how
        long orders accepted lately took to come to rest."""
        return max(sent + self.first_poll, accepted + self.expected_settle_s(recent_settle_s))

    def expected_settle_s(self, recent_settle_s: Iterable[float]) -> float:
        """By when ``settled_share`` of recent orders had come to rest after being accepted (0 while too few)."""
        samples = list(recent_settle_s)
        if len(samples) < self.min_samples:
            return 0.0
        percentile = min(99, max(1, round(self.settled_share * 100)))
        return statistics.quantiles(samples, n=100, method="inclusive")[percentile - 1]


def _orders_per_get(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_ORDERS_PER_GET:
        raise argparse.ArgumentTypeError(f"orders per GET must be 1 to {MAX_ORDERS_PER_GET}, not {value}")
    return value


def add_orders_per_get_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--orders-per-get``, 1 to ``MAX_ORDERS_PER_GET``, for ``loadtest`` and ``bench``."""
    parser.add_argument(
        "--orders-per-get",
        type=_orders_per_get,
        default=MAX_ORDERS_PER_GET,
        help=f"Orders looked up per GET while polling (default {MAX_ORDERS_PER_GET}; 1: a GET per order).",
    )


class RateLimit:
    """At most ``rate`` acquisitions per second, shared by every coroutine."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0

    async def acquire(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + 1.0 / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)


class Observer:
    def __init__(
        self, client: PlatformClient, policy: PollPolicy, tally: Tally, on_rest: Callable[[OrderRecord], None]
    ) -> None:
        self._client = client
        self._policy = policy
        self._tally = tally
        self._on_rest = on_rest
        self._limit = RateLimit(policy.lookups_per_s if policy.looks_up else policy.polls_per_s)
        self._due: list[tuple[float, int, OrderRecord]] = []
        self._sequence = itertools.count()
        self._added = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._hits: deque[float] = deque()
        self._settle_s: deque[float] = deque(maxlen=SETTLE_SAMPLES)
        self.watching = 0

    def watch(self, record: OrderRecord) -> None:
        self.watching += 1
        due = self._policy.first_due(
            sent=record.sent_mono, accepted=_accepted_mono(record), recent_settle_s=self._settle_s
        )
        self._push(record, due)

    def _push(self, record: OrderRecord, due: float) -> None:
        heapq.heappush(self._due, (due, next(self._sequence), record))
        self._added.set()

    def start(self) -> None:
        pollers = min(self._policy.pollers, LOOKUP_POLLERS) if self._policy.looks_up else self._policy.pollers
        self._tasks = [asyncio.create_task(self._poll_forever()) for _ in range(pollers)]
        self._tasks.append(asyncio.create_task(self._control_forever()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _next_due(self) -> OrderRecord:
        while True:
            if not self._due:
                self._added.clear()
                await self._added.wait()
                continue
            wait = self._due[0][0] - time.monotonic()
            if wait <= 0:
                return heapq.heappop(self._due)[2]
            self._added.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._added.wait(), timeout=wait)

    async def _poll_forever(self) -> None:
        while True:
            if self._policy.looks_up:
                await self._limit.acquire()
                record = await self._next_due()
                await self._look_up([record, *self._also_due()])
            else:
                record = await self._next_due()
                await self._limit.acquire()
                await self._poll(record)

    def _also_due(self) -> list[OrderRecord]:
        """Besides the one taken, the orders due by now, oldest-due first, to fill one lookup."""
        now, taken = time.monotonic(), []
        while self._due and self._due[0][0] <= now and len(taken) < self._policy.orders_per_get - 1:
            taken.append(heapq.heappop(self._due)[2])
        return taken

    async def _control_forever(self) -> None:
        if self._policy.looks_up:
            return  # a lookup's rate is fixed; its size follows the orders due
        while True:
            await asyncio.sleep(CONTROL_EVERY_S)
            horizon = time.monotonic() - HIT_WINDOW_S
            while self._hits and self._hits[0] < horizon:
                self._hits.popleft()
            wanted = 2.0 * len(self._hits) / HIT_WINDOW_S + self._policy.min_polls_per_s
            self._limit.rate = min(self._policy.polls_per_s, wanted)

    async def _poll(self, record: OrderRecord) -> None:
        assert record.order_id is not None
        answer = await self._client.fetch(record.order_id)
        self._tally.gets += 1
        record.polls += 1
        now = time.monotonic()
        if answer.status == 404:
            self._seen(record, None, now=now)
        elif not answer.ok:
            self._tally.error(f"GET {answer.error}")
            self._push(record, now + RETRY_AFTER_ERROR_S)
        elif self._seen(record, answer.body or {}, now=now):
            self._hits.append(now)

    async def _look_up(self, records: list[OrderRecord]) -> None:
        order_ids = []
        for record in records:
            assert record.order_id is not None  # only accepted orders are watched
            order_ids.append(record.order_id)
            record.polls += 1  # as a GET of its own counts, whatever its answer
        answer = await self._client.fetch_many(order_ids)
        self._tally.gets += 1
        now = time.monotonic()
        body = answer.body or {}
        if not answer.ok or not isinstance(body.get("orders"), list):
            self._tally.error(f"GET {answer.error or 'lookup without orders'}")
            for record in records:
                self._push(record, now + RETRY_AFTER_ERROR_S)
            return
        shown = {order.get("id"): order for order in body["orders"]}
        for record in records:
            self._seen(record, shown.get(record.order_id), now=now)

    def _seen(self, record: OrderRecord, order: dict[str, Any] | None, *, now: float) -> bool:
        """What a look found: the order unknown to the platform (``None``: lost), at rest, or still moving and
        looked at again later. True when it came to rest."""
        if order is None:
            record.state = LOST
            self._rested(record)
            return False
        if record.settle(order, seen_at=time.time()):
            self._rested(record)
            return True
        self._push(record, now + self._policy.next_interval(now - _accepted_mono(record)))
        return False

    def _rested(self, record: OrderRecord) -> None:
        self.watching -= 1
        if record.saga_latency is not None:
            self._settle_s.append(record.saga_latency)
        self._on_rest(record)


def _accepted_mono(record: OrderRecord) -> float:
    return record.sent_mono + (record.answered_after or 0.0)
