"""``make bench``: an isolated platform, a Celery reference, a sustained load and a 10x spike."""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from django.db import connections
from rich.console import Console

from orders.loadgen.catalogue import default_catalogue, seed_stock
from orders.loadgen.consistency import ConsistencyReport, await_history, check_consistency
from orders.loadgen.costs import costs_table
from orders.loadgen.isolation import (
    bench_database,
    bench_redis_db,
    bench_redis_port,
    exclusive_bench,
    reset_database,
    reset_redis,
)
from orders.loadgen.mix import OrderFactory, OrderMix
from orders.loadgen.observer import MAX_ORDERS_PER_GET, PollPolicy
from orders.loadgen.pgstats import DatabaseActivity, database_activity
from orders.loadgen.processes import Platform, Topology
from orders.loadgen.profiles import CPU, Profiler
from orders.loadgen.progress import live_progress
from orders.loadgen.readiness import await_ready, fail_if_dead
from orders.loadgen.reference import ReferenceResult, run_noops
from orders.loadgen.render import load_table
from orders.loadgen.report import LoadReport, build_report
from orders.loadgen.resources import CpuUsage, ResourceMonitor, cpu_between
from orders.loadgen.runner import POLL, LoadPlan, run_load
from orders.loadgen.schedule import Phase, spike_phases
from orders.loadgen.setup import new_api_token, run_id
from orders.loadgen.verdict import lost_orders, stuck_orders
from orders.loadgen.version import code_version

# PostgreSQL publishes a session's counters when its transactions end, or within a second when idle.
STATS_FLUSH_S = 1.5


@dataclass(frozen=True)
class BenchPlan:
    rate: float = 120.0
    duration: float = 60.0
    spike_base: float = 12.0
    spike_factor: float = 10.0
    spike_seconds: tuple[float, float, float] = (20.0, 60.0, 40.0)
    reference_tasks: int = 5000
    warmup_rate: float = 10.0
    warmup_s: float = 5.0
    drain_s: float = 900.0
    observe: str = POLL
    orders_per_get: int = MAX_ORDERS_PER_GET
    seed: int = 1
    topology: Topology = field(default_factory=Topology)
    mix: OrderMix = field(default_factory=OrderMix)
    profile_dir: Path | None = None
    profile_mode: str = CPU
    quick: bool = False

    def quick_version(self) -> BenchPlan:
        return replace(
            self,
            rate=30.0,
            duration=10.0,
            spike_base=3.0,
            spike_seconds=(5.0, 10.0, 5.0),
            reference_tasks=1000,
            warmup_s=3.0,
            quick=True,
        )

    def sustained_phases(self) -> tuple[Phase, ...]:
        return (Phase(name="sustained", rate=self.rate, seconds=self.duration),)

    def spike_phases(self) -> tuple[Phase, ...]:
        before, peak, after = self.spike_seconds
        return spike_phases(base=self.spike_base, factor=self.spike_factor, before=before, peak=peak, after=after)


@dataclass(frozen=True)
class Measured:
    name: str
    report: LoadReport
    cpu: CpuUsage
    database: DatabaseActivity
    accepted_ids: list[str]

    def per_order(self, seconds: float) -> float:
        return seconds / self.report.finished if self.report.finished else 0.0


@dataclass(frozen=True)
class BenchResult:
    plan: BenchPlan
    database: str
    redis_db: int
    log_dir: Path
    code: str
    measured: Measurements
    peak_rss_mb: dict[str, float]
    peak_kind_rss_mb: dict[str, float]
    lost: int
    stuck: int
    consistency: ConsistencyReport


@dataclass
class Session:
    """What the phases of one run share."""

    plan: BenchPlan
    console: Console
    platform: Platform
    monitor: ResourceMonitor
    token: str
    run_id: str

    def load(self, name: str, phases: tuple[Phase, ...], seed: int, *, show: bool = True) -> Measured:
        fail_if_dead(self.platform)
        peak = max(phase.rate for phase in phases)
        plan = LoadPlan(
            phases=phases,
            drain_s=self.plan.drain_s,
            observe=self.plan.observe,
            seed=seed,
            poll=PollPolicy(polls_per_s=max(20.0, 1.5 * peak), orders_per_get=self.plan.orders_per_get),
        )
        factory = OrderFactory(
            mix=self.plan.mix, catalogue=default_catalogue(), run_id=f"{self.run_id}-{name}", seed=seed
        )
        before, activity = self.monitor.snapshot(), database_activity()
        with live_progress(self.console, name) as progress:
            load = run_load(
                plan,
                base_url=self.platform.base_url,
                token=self.token,
                factory=factory,
                progress=progress,
                health=lambda: fail_if_dead(self.platform),
            )
            result = asyncio.run(load)
        after = self.monitor.snapshot()
        time.sleep(STATS_FLUSH_S)
        activity = database_activity() - activity
        accepted = [r.order_id for r in result.records if r.order_id is not None]
        report, cpu = build_report(result), cpu_between(before, after)
        if show:
            self.console.print(load_table(report, f"{name}: {report.planned} orders"))
            self.console.print(costs_table(f"{name}: costs", cpu, activity, report.finished))
        return Measured(name, report, cpu, activity, accepted)

    def reference(self) -> tuple[ReferenceResult, CpuUsage]:
        before = self.monitor.snapshot()
        result = run_noops(self.plan.reference_tasks, self.platform.worker_names())
        return result, cpu_between(before, self.monitor.snapshot())


@dataclass(frozen=True)
class Measurements:
    ready_s: float
    reference: ReferenceResult
    reference_cpu: CpuUsage
    sustained: Measured
    spike: Measured
    profile: dict[str, list[tuple[str, float]]]


def _profiled_sustained(session: Session) -> tuple[Measured, dict[str, list[tuple[str, float]]]]:
    plan = session.plan
    if plan.profile_dir is None:
        return session.load("sustained", plan.sustained_phases(), plan.seed + 1), {}
    profiler = Profiler(session.platform, plan.profile_dir, seconds=plan.duration, mode=plan.profile_mode)
    profiler.start()
    try:
        measured = session.load("sustained", plan.sustained_phases(), plan.seed + 1)
    finally:
        profiler.finish()
    return measured, profiler.summary()


def _measure(session: Session, ready_s: float) -> Measurements:
    plan, console = session.plan, session.console
    console.log(f"reference: {plan.reference_tasks} no-op tasks on the saga worker")
    reference, reference_cpu = session.reference()
    console.log(f"warm-up: {plan.warmup_rate:g}/s for {plan.warmup_s:g}s (not counted)")
    warmup = (Phase(name="warm-up", rate=plan.warmup_rate, seconds=plan.warmup_s),)
    session.load("warm-up", warmup, plan.seed, show=False)
    console.log(f"sustained: {plan.rate:g}/s for {plan.duration:g}s, then drain")
    sustained, profile = _profiled_sustained(session)
    console.log("spike: " + ", ".join(f"{p.rate:g}/s for {p.seconds:g}s" for p in plan.spike_phases()))
    spike = session.load("spike", plan.spike_phases(), plan.seed + 2)
    return Measurements(ready_s, reference, reference_cpu, sustained, spike, profile)


# Fraud's customer history takes the confirmed orders' events gathered, every half second at up to 500/s: after
# the drain of a spike's backlog of held events, a minute is more than enough.
HISTORY_WITHIN_S = 60.0


def _run_platform(plan: BenchPlan, console: Console, platform: Platform, monitor: ResourceMonitor) -> Measurements:
    console.log(f"starting the platform on {platform.base_url}: {plan.topology.describe()}")
    console.log(f"logs in {platform.log_dir}")
    try:
        platform.start()
        monitor.start()
        ready_s = await_ready(platform)
        session = Session(plan, console, platform, monitor, new_api_token("bench"), run_id())
        measured = _measure(session, ready_s)
        # The load is over: the web's sessions (about 38) go back to the server before the check opens its own;
        # with the saga's 48 beside them, the server had none left for it.
        platform.stop(kinds={"web"})
        await_history(within_s=HISTORY_WITHIN_S, log=console.log)
        return measured
    finally:
        monitor.stop()
        console.log("stopping the platform")
        platform.stop()


def run_bench(plan: BenchPlan, console: Console) -> BenchResult:
    database = bench_database()
    with exclusive_bench(database):
        return _run_exclusive(plan, console, database)


def _run_exclusive(plan: BenchPlan, console: Console, database: str) -> BenchResult:
    redis_db = bench_redis_db()
    code = code_version()
    console.log(f"measuring code {code}")
    console.log(f"resetting database {database} and Redis db {redis_db}, migrating")
    reset_database(database)
    reset_redis()
    seeded = seed_stock(default_catalogue())
    # Migrating opened a connection per alias: give them back before the platform needs the server's slots.
    connections.close_all()
    platform = Platform(plan.topology, Path(tempfile.mkdtemp(prefix="orders-bench-")))
    monitor = ResourceMonitor(platform, database, bench_redis_port())
    measured = _run_platform(plan, console, platform, monitor)
    sustained, spike = measured.sustained, measured.spike
    console.log("checking that every module's books agree")
    return BenchResult(
        plan=plan,
        database=database,
        redis_db=redis_db,
        log_dir=platform.log_dir,
        code=code,
        measured=measured,
        peak_rss_mb=monitor.peak_rss_mb(),
        peak_kind_rss_mb=monitor.peak_kind_rss_mb(),
        lost=lost_orders(sustained.accepted_ids + spike.accepted_ids) + sustained.report.lost + spike.report.lost,
        stuck=stuck_orders(),
        consistency=check_consistency(seeded=seeded),
    )
