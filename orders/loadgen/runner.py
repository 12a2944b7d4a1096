"""Driving the platform: open-loop arrivals or closed-loop clients, then a drain."""

from __future__ import annotations

import asyncio
import itertools
import resource
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orders.loadgen.client import DEFAULT_MAX_CONNECTIONS, Answer, PlatformClient
from orders.loadgen.mix import OrderFactory
from orders.loadgen.observer import Observer, PollPolicy
from orders.loadgen.records import OrderRecord, Tally
from orders.loadgen.schedule import Phase, arrivals, planned_orders

POLL = "poll"
WAIT = "wait"
CLOSED_LOOP_PHASE = "closed-loop"
RETRY_DELAY_S = 0.5
TICK_S = 0.25

Progress = Callable[[Tally, str], None]
# Raises when what is being measured can no longer answer (a process of the platform died).
HealthCheck = Callable[[], None]


@dataclass(frozen=True)
class LoadPlan:
    phases: tuple[Phase, ...] = ()
    concurrency: int = 0
    orders: int | None = None
    duration: float | None = None
    drain_s: float = 120.0
    stall_s: float = 60.0
    observe: str = POLL
    wait_s: float = 10.0
    timeout_s: float = 30.0
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    attempts: int = 3
    poisson: bool = False
    seed: int = 1
    poll: PollPolicy = field(default_factory=PollPolicy)

    @property
    def closed_loop(self) -> bool:
        return self.concurrency > 0

    @property
    def planned(self) -> int:
        if self.closed_loop:
            return self.orders or 0
        total = planned_orders(self.phases)
        return min(total, self.orders) if self.orders else total

    def describe_observation(self) -> str:
        if self.observe == WAIT:
            return f"POST with `Prefer: wait={self.wait_s:g}`, then GET polling for orders still moving"
        if self.poll.looks_up:
            return (
                f"POST (202), then the orders due looked up together, oldest first, up to "
                f"{self.poll.orders_per_get} a GET, at most {self.poll.lookups_per_s:g} GET/s"
            )
        return f"POST (202), then GET polling, oldest first, at most {self.poll.polls_per_s:g} GET/s"


@dataclass(frozen=True)
class LoadResult:
    plan: LoadPlan
    records: list[OrderRecord]
    tally: Tally
    wall_s: float
    cpu_s: float


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class LoadRun:
    def __init__(
        self,
        plan: LoadPlan,
        client: PlatformClient,
        factory: OrderFactory,
        progress: Progress | None = None,
        health: HealthCheck | None = None,
    ) -> None:
        self.plan = plan
        self.client = client
        self.factory = factory
        self._health = health
        self.tally = Tally(planned=plan.planned)
        self.records: list[OrderRecord] = []
        self.observer = Observer(client, plan.poll, self.tally, self._rested)
        self._progress = progress
        self._phase = ""
        self._bodies: dict[int, dict[str, Any]] = {}
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._placements: set[asyncio.Task[None]] = set()
        self._run_key = uuid.uuid4().hex[:12]

    async def run(self) -> LoadResult:
        cpu_before, started = process_cpu_seconds(), time.monotonic()
        self.observer.start()
        work, watchdog = asyncio.create_task(self._work()), asyncio.create_task(self._watch())
        try:
            await asyncio.wait({work, watchdog}, return_when=asyncio.FIRST_COMPLETED)
            if watchdog.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                watchdog.result()
            work.result()
        finally:
            watchdog.cancel()
            await self._cancel_placements()
            await self.observer.stop()
            self._report_progress()
        return LoadResult(
            plan=self.plan,
            records=self.records,
            tally=self.tally,
            wall_s=time.monotonic() - started,
            cpu_s=process_cpu_seconds() - cpu_before,
        )

    async def _work(self) -> None:
        await (self._closed_loop() if self.plan.closed_loop else self._open_loop())
        deadline = time.monotonic() + self.plan.drain_s
        await self._settle_placements(deadline)
        await self._drain(deadline)

    async def _watch(self) -> None:
        """Show progress; end the run if the health check raises."""
        while True:
            self._report_progress()
            if self._health is not None:
                self._health()
            await asyncio.sleep(TICK_S)

    # --- arrivals

    async def _open_loop(self) -> None:
        """Send every order at its arrival time, without waiting for earlier ones."""
        start = time.monotonic()
        for arrival in arrivals(self.plan.phases, poisson=self.plan.poisson, seed=self.plan.seed):
            if self.plan.orders is not None and arrival.index >= self.plan.orders:
                break
            delay = start + arrival.offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._phase = arrival.phase
            record = self._new_record(arrival.index, arrival.phase)
            record.lag = max(0.0, time.monotonic() - (start + arrival.offset))
            task = asyncio.create_task(self._place(record))
            self._placements.add(task)
            task.add_done_callback(self._placements.discard)
        self._phase = "drain"

    async def _settle_placements(self, deadline: float) -> None:
        if self._placements:
            await asyncio.wait(set(self._placements), timeout=max(0.0, deadline - time.monotonic()))

    async def _cancel_placements(self) -> None:
        late = set(self._placements)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _closed_loop(self) -> None:
        counter = itertools.count()
        deadline = time.monotonic() + self.plan.duration if self.plan.duration else float("inf")
        self._phase = CLOSED_LOOP_PHASE

        async def client_loop() -> None:
            while (index := next(counter)) < (self.plan.orders or 10**12) and time.monotonic() < deadline:
                await self._place_and_await(self._new_record(index, CLOSED_LOOP_PHASE))

        await asyncio.gather(*(client_loop() for _ in range(self.plan.concurrency)))
        self._phase = "drain"

    async def _place_and_await(self, record: OrderRecord) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[record.index] = waiter
        await self._place(record)
        if record.accepted and record.state is None:
            await asyncio.wait({waiter}, timeout=self.plan.drain_s)
        self._waiters.pop(record.index, None)

    def _new_record(self, index: int, phase: str) -> OrderRecord:
        planned = self.factory.order(index)
        self._bodies[index] = planned.body
        record = OrderRecord(index=index, phase=phase, kind=planned.kind, key=f"load-{self._run_key}-{index}")
        self.records.append(record)
        if self.plan.closed_loop:
            self.tally.planned = max(self.tally.planned, len(self.records))
        return record

    # --- one order

    async def _place(self, record: OrderRecord) -> None:
        body = self._bodies.pop(record.index)
        wait_s = self.plan.wait_s if self.plan.observe == WAIT else 0.0
        record.sent_at, record.sent_mono = time.time(), time.monotonic()
        self.tally.sent += 1
        for attempt in range(1, self.plan.attempts + 1):
            record.attempts = attempt
            answer = await self.client.place(body, key=record.key, wait_s=wait_s)
            if answer.ok and answer.body and answer.body.get("id"):
                self._accepted(record, answer)
                return
            self.tally.error(f"POST {answer.error or answer.status}")
            if attempt == self.plan.attempts or not (answer.retryable or answer.status == 409):
                record.failure = answer.error
                return
            await asyncio.sleep(answer.retry_after or RETRY_DELAY_S * attempt)

    def _accepted(self, record: OrderRecord, answer: Answer) -> None:
        self.tally.accepted += 1
        record.answered_after = time.monotonic() - record.sent_mono
        record.order_id = str(answer.body["id"]) if answer.body else None
        if record.settle(answer.body, seen_at=time.time()):
            self._rested(record)
        else:
            self.observer.watch(record)

    def _rested(self, record: OrderRecord) -> None:
        self.tally.finish(record)
        waiter = self._waiters.get(record.index)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- the end

    async def _drain(self, deadline: float) -> None:
        """Wait for unfinished orders until ``deadline``, or until none has finished for ``stall_s``."""
        self._phase = "drain"
        finished, moved_at = self.tally.finished, time.monotonic()
        while self.observer.watching > 0 and time.monotonic() < min(deadline, moved_at + self.plan.stall_s):
            await asyncio.sleep(0.05)
            if self.tally.finished != finished:
                finished, moved_at = self.tally.finished, time.monotonic()

    def _report_progress(self) -> None:
        if self._progress is not None:
            self._progress(self.tally, self._phase)


async def run_load(
    plan: LoadPlan,
    *,
    base_url: str,
    token: str,
    factory: OrderFactory,
    progress: Progress | None = None,
    health: HealthCheck | None = None,
) -> LoadResult:
    client = PlatformClient(
        base_url=base_url, token=token, timeout=plan.timeout_s, max_connections=plan.max_connections
    )
    try:
        return await LoadRun(plan, client, factory, progress, health).run()
    finally:
        await client.aclose()
