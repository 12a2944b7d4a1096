"""Relay benchmark: outbox-to-broker throughput against plain Celery, and pickup latency.

Everything goes to a Redis database of its own; the benchmark's outbox rows,
queue and bookkeeping keys are removed afterwards.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psutil
from django.conf import settings
from django.db import connections, transaction
from django.db.backends.utils import CursorWrapper
from django.test import override_settings
from django.utils import timezone

from config.celery import app as celery_app
from messaging.models import KernelOutbox, RelayHeartbeat
from messaging.redis import redis_client
from messaging.relay import drain_batch, outbox_backlog, outbox_models
from messaging.tasks import BENCH_MESSAGE_TYPE, BENCH_QUEUE, PICKUP_KEY, bench_noop

DEFAULT_BENCH_REDIS_URL = "redis://127.0.0.1:6379/13"
TICK_EVERY = 500
TICK_APPENDS = 50
WARMUP_MESSAGES = 50
RUNNING_KEY = "bench:running"
RUNNING_TTL_S = 900

Tick = Callable[[int], None]
StartPhase = Callable[[str, int], Tick]


class BenchRefused(RuntimeError):
    """The benchmark would disturb a running platform or its broker."""


@dataclass(frozen=True)
class BenchPlan:
    messages: int = 20_000
    rate: float = 500.0
    latency_seconds: float = 10.0
    batch_size: int = 500
    redis_url: str = DEFAULT_BENCH_REDIS_URL
    worker_processes: int = 1
    worker_pool: str = "threads"


@dataclass(frozen=True)
class PickupLatency:
    sent: int
    samples: int
    achieved_rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    claim_p50_ms: float
    claim_p99_ms: float
    cpu_ms_per_message: dict[str, float]


@dataclass(frozen=True)
class BenchReport:
    messages: int
    batch_size: int
    raw_publish_per_s: float
    relay_msgs_per_s: float
    pickup: PickupLatency

    @property
    def ratio(self) -> float:
        return self.relay_msgs_per_s / self.raw_publish_per_s

    def figures(self) -> dict[str, float | int]:
        return {
            "relay_msgs_per_s": round(self.relay_msgs_per_s, 1),
            "raw_publish_per_s": round(self.raw_publish_per_s, 1),
            "ratio": round(self.ratio, 3),
            "pickup_p50_ms": round(self.pickup.p50_ms, 2),
            "pickup_p99_ms": round(self.pickup.p99_ms, 2),
            "pickup_max_ms": round(self.pickup.max_ms, 2),
            "pickup_samples": self.pickup.samples,
            "pickup_rate_per_s": round(self.pickup.achieved_rate, 1),
            "claim_p50_ms": round(self.pickup.claim_p50_ms, 2),
            "claim_p99_ms": round(self.pickup.claim_p99_ms, 2),
            "cpu_ms_per_message": self.pickup.cpu_ms_per_message,
            "messages": self.messages,
            "batch_size": self.batch_size,
        }


# --- broker of the benchmark


@contextmanager
def bench_broker(url: str) -> Iterator[None]:
    """Point this process's Celery producer and Redis client at ``url``; no log line per message."""
    if url == settings.REDIS_URL:
        raise BenchRefused(f"the benchmark needs a Redis database of its own, not the platform's {url}")
    previous = celery_app.conf.broker_url
    with override_settings(REDIS_URL=url, MESSAGING_RELAY_LOG_EACH=False):
        _switch_broker(url)
        try:
            yield
        finally:
            _switch_broker(previous)


def _switch_broker(url: str) -> None:
    celery_app.conf.broker_url = url
    redis_client.cache_clear()
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def sole_bench_run() -> Iterator[None]:
    """Refuse to share the benchmark's Redis database with another run: each would purge the other's queue."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    if not redis_client().set(RUNNING_KEY, owner, nx=True, ex=RUNNING_TTL_S):
        holder = redis_client().get(RUNNING_KEY) or b"?"
        raise BenchRefused(f"another bench_relay ({holder.decode()}) is using this Redis database")
    try:
        yield
    finally:
        redis_client().delete(RUNNING_KEY)


def ensure_no_consumers() -> None:
    """Refuse while any worker listens on the benchmark's broker: it would take messages off the queue."""
    answers = celery_app.control.ping(timeout=1.0)
    if answers:
        names = ", ".join(sorted(name for answer in answers for name in answer))
        raise BenchRefused(f"stop the worker(s) already consuming from the benchmark's Redis database: {names}")


@contextmanager
def leaves_no_keys() -> Iterator[None]:
    """Delete every Redis key that appears while the block runs."""
    before = set(redis_client().keys("*"))
    try:
        yield
    finally:
        created = set(redis_client().keys("*")) - before
        if created:
            redis_client().delete(*created)


def purge_bench_queue() -> None:
    redis_client().delete(BENCH_QUEUE, PICKUP_KEY)


def delete_bench_rows() -> None:
    """Delete the benchmark's rows and vacuum them away, so the next claim scans no dead ones."""
    KernelOutbox.objects.filter(message_type=BENCH_MESSAGE_TYPE).delete()
    vacuum_outbox()


def vacuum_outbox() -> None:
    connection = connections[KernelOutbox.objects.db]
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(KernelOutbox._meta.db_table)}")


def ensure_platform_idle() -> None:
    """Refuse while a relay runs or an outbox has a backlog: the benchmark would take its messages."""
    fresh = timezone.now() - timedelta(seconds=10)
    running = list(RelayHeartbeat.objects.filter(beat_at__gte=fresh).values_list("relay_id", flat=True))
    if running:
        raise BenchRefused(f"stop the running relay(s) first: {', '.join(running)}")
    for model in outbox_models():
        backlog, _age = outbox_backlog(model)
        if backlog:
            raise BenchRefused(f"{model._meta.db_table} has {backlog} unpublished rows; let the relay drain them first")


# --- reference: plain Celery


def publish_noops(count: int, tick: Tick) -> float:
    """Publish ``count`` no-op tasks with ``.delay()``; return tasks per second."""
    started = time.perf_counter()
    for sent in range(1, count + 1):
        bench_noop.delay()
        if sent % TICK_EVERY == 0:
            tick(TICK_EVERY)
    elapsed = time.perf_counter() - started
    tick(count % TICK_EVERY)
    return count / elapsed


# --- relay throughput


def commit_bench_rows(count: int) -> None:
    now = timezone.now()
    with transaction.atomic(using=KernelOutbox.objects.db):
        KernelOutbox.objects.bulk_create(
            (
                KernelOutbox(
                    message_type=BENCH_MESSAGE_TYPE,
                    aggregate_id=f"bench-{i}",
                    sequence=i,
                    correlation_id="bench",
                    created_at=now,
                )
                for i in range(count)
            ),
            batch_size=5000,
        )


def drain_bench_outbox(batch_size: int, tick: Tick) -> int:
    """Run the relay's batches over the kernel outbox until it is empty."""
    total = 0
    while sent := drain_batch(KernelOutbox, batch_size):
        total += sent
        tick(sent)
    return total


def measure_relay_throughput(count: int, batch_size: int, tick: Tick) -> float:
    """Commit ``count`` rows, relay them all; return messages per second from commit to published."""
    commit_bench_rows(count)
    started = time.perf_counter()
    published = drain_bench_outbox(batch_size, tick)
    elapsed = time.perf_counter() - started
    queued = redis_client().llen(BENCH_QUEUE)
    if published != count or queued != count:
        raise RuntimeError(
            f"relayed {published} rows and found {queued} messages on the queue, expected {count} "
            "(is another consumer reading the benchmark's queue?)"
        )
    return count / elapsed


# --- pickup latency: a real relay and a real worker


def _subprocess_env(redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "TEST_REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "MESSAGING_RELAY_LOG_EACH": "0",
        "PYTHONUNBUFFERED": "1",
    }


def _spawn(args: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            args, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def start_bench_worker(env: dict[str, str], log: Path, *, pool: str, index: int) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", BENCH_QUEUE, "--pool", pool]
    args += ["-c", "1" if pool == "solo" else "4", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
    args += ["--hostname", f"bench-{os.getpid()}-{index}@%h"]
    return _spawn(args, env=env, log=log)


def start_bench_relay(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return _spawn([sys.executable, "manage.py", "relay", "--poll-interval", "1.0"], env=env, log=log)


def await_workers(workers: list[subprocess.Popen[bytes]], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(worker.poll() is not None for worker in workers):
            raise RuntimeError(f"a bench worker exited:\n{log.read_text(errors='replace')[-3000:]}")
        if len(celery_app.control.ping(timeout=0.5)) >= len(workers):
            return
    raise RuntimeError(f"bench workers did not all answer within {timeout}s")


def relay_id_of(proc: subprocess.Popen[bytes]) -> str:
    return f"{socket.gethostname()}:{proc.pid}"


def await_relay(relay: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if relay.poll() is not None:
            raise RuntimeError(f"bench relay exited:\n{log.read_text(errors='replace')[-3000:]}")
        if RelayHeartbeat.objects.filter(relay_id=relay_id_of(relay)).exists():
            return
        time.sleep(0.1)
    raise RuntimeError(f"bench relay did not beat within {timeout}s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def append_one(sequence: int, cursor: CursorWrapper) -> float:
    """One business-sized transaction: a single outbox row; return the wall-clock time of its commit.

    A plain INSERT rather than the ORM, so that the appender, which stands in
    for the platform's business transactions, takes little of the CPU the
    relay and the workers are measured on. The row and its commit-time NOTIFY
    are the same as ``outbox_append``'s.
    """
    alias = KernelOutbox.objects.db
    with transaction.atomic(using=alias):
        cursor.execute(APPEND_SQL, [uuid.uuid4(), BENCH_MESSAGE_TYPE, f"bench-{sequence}", sequence])
    return time.time()


APPEND_SQL = (
    f"INSERT INTO {KernelOutbox._meta.db_table} (id, message_type, version, aggregate_id, sequence, "
    "correlation_id, causation_id, region, payload, headers, created_at) "
    "VALUES (%s, %s, 1, %s, %s, 'bench', '', '', '{}', '{}', clock_timestamp())"
)


def append_at_rate(count: int, rate: float, tick: Tick) -> tuple[float, dict[int, float]]:
    """Append ``count`` rows, one per transaction, at ``rate`` per second.

    Returns the rate achieved and the commit time of each row by sequence.
    """
    committed: dict[int, float] = {}
    started = time.monotonic()
    with connections[KernelOutbox.objects.db].cursor() as cursor:
        for sequence in range(count):
            delay = started + sequence / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            committed[sequence] = append_one(sequence, cursor)
            if sequence % TICK_APPENDS == TICK_APPENDS - 1:
                tick(TICK_APPENDS)
    tick(count % TICK_APPENDS)
    return count / (time.monotonic() - started), committed


def await_pickups(count: int, timeout: float) -> dict[int, float]:
    """When the consumer started on each message, by sequence, once ``count`` arrived or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while redis_client().llen(PICKUP_KEY) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    started: dict[int, float] = {}
    for entry in redis_client().lrange(PICKUP_KEY, 0, -1):
        sequence, at = entry.split()
        started.setdefault(int(sequence), float(at))
    return started


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in (0, 100]."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def claim_waits_ms(committed: dict[int, float]) -> list[float]:
    """For every benchmark row the relay claimed: from its commit to the relay's claim (same host clock)."""
    stamps = KernelOutbox.objects.filter(message_type=BENCH_MESSAGE_TYPE, published_at__isnull=False)
    return [
        (claimed.timestamp() - committed[sequence]) * 1000.0
        for sequence, claimed in stamps.values_list("sequence", "published_at")
        if sequence in committed
    ]


@dataclass(frozen=True)
class CpuClock:
    """CPU seconds so far of the appender (this process), the relay, the workers and the whole box."""

    appender: float
    relay: float
    workers: float
    box: float

    @classmethod
    def read(cls, relay: psutil.Process, workers: list[psutil.Process]) -> CpuClock:
        def used(proc: psutil.Process) -> float:
            times = proc.cpu_times()
            return times.user + times.system

        box = psutil.cpu_times()
        return cls(
            appender=used(psutil.Process()),
            relay=used(relay),
            workers=sum(used(worker) for worker in workers),
            box=sum(box) - box.idle - getattr(box, "iowait", 0.0) - getattr(box, "steal", 0.0),
        )

    def per_message_ms(self, later: CpuClock, messages: int) -> dict[str, float]:
        """Milliseconds of CPU per message by part; ``servers`` is the rest of the box (PostgreSQL, Redis)."""
        parts = {
            "appender": later.appender - self.appender,
            "relay": later.relay - self.relay,
            "workers": later.workers - self.workers,
        }
        parts["servers"] = max(0.0, later.box - self.box - sum(parts.values()))
        parts["total"] = later.box - self.box
        return {part: round(seconds * 1000.0 / messages, 3) for part, seconds in parts.items()}


def sample_pickups(rate: float, seconds: float, tick: Tick, *, relay: int, workers: list[int]) -> PickupLatency:
    """Warm the relay and worker up, then append at ``rate`` and time each message from commit to consumer."""
    append_at_rate(WARMUP_MESSAGES, rate, lambda _n: None)
    await_pickups(WARMUP_MESSAGES, timeout=10.0)
    purge_bench_queue()
    delete_bench_rows()
    count = max(1, round(rate * seconds))
    processes = psutil.Process(relay), [psutil.Process(pid) for pid in workers]
    before = CpuClock.read(*processes)
    achieved, committed = append_at_rate(count, rate, tick)
    started = await_pickups(count, timeout=10.0)
    cpu = before.per_message_ms(CpuClock.read(*processes), count)
    waited = [(at - committed[sequence]) * 1000.0 for sequence, at in started.items() if sequence in committed]
    claimed = claim_waits_ms(committed)
    if not waited or not claimed:
        raise RuntimeError("the bench consumer recorded no pickups")
    return PickupLatency(
        sent=count,
        samples=len(waited),
        achieved_rate=achieved,
        p50_ms=percentile(waited, 50),
        p99_ms=percentile(waited, 99),
        max_ms=max(waited),
        claim_p50_ms=percentile(claimed, 50),
        claim_p99_ms=percentile(claimed, 99),
        cpu_ms_per_message=cpu,
    )


def measure_pickup_latency(plan: BenchPlan, tick: Tick, log_dir: Path) -> PickupLatency:
    env = _subprocess_env(plan.redis_url)
    worker_log, relay_log = log_dir / "worker.log", log_dir / "relay.log"
    workers = [
        start_bench_worker(env, worker_log, pool=plan.worker_pool, index=i) for i in range(plan.worker_processes)
    ]
    relay: subprocess.Popen[bytes] | None = None
    try:
        await_workers(workers, worker_log)
        relay = start_bench_relay(env, relay_log)
        await_relay(relay, relay_log)
        return sample_pickups(
            plan.rate, plan.latency_seconds, tick, relay=relay.pid, workers=[worker.pid for worker in workers]
        )
    finally:
        if relay is not None:
            stop_process(relay)
            RelayHeartbeat.objects.filter(relay_id=relay_id_of(relay)).delete()
        for worker in workers:
            stop_process(worker)


# --- the whole run


def run_bench(plan: BenchPlan, start_phase: StartPhase) -> BenchReport:
    ensure_platform_idle()
    vacuum_outbox()
    with (
        bench_broker(plan.redis_url),
        sole_bench_run(),
        leaves_no_keys(),
        tempfile.TemporaryDirectory(prefix="bench-relay-") as logs,
    ):
        ensure_no_consumers()
        try:
            raw = publish_noops(plan.messages, start_phase("plain Celery .delay()", plan.messages))
            purge_bench_queue()
            relayed = measure_relay_throughput(plan.messages, plan.batch_size, start_phase("relay", plan.messages))
            purge_bench_queue()
            delete_bench_rows()
            total = max(1, round(plan.rate * plan.latency_seconds))
            pickup = measure_pickup_latency(plan, start_phase(f"pickup at {plan.rate:g}/s", total), Path(logs))
        finally:
            purge_bench_queue()
            delete_bench_rows()
    return BenchReport(
        messages=plan.messages,
        batch_size=plan.batch_size,
        raw_publish_per_s=raw,
        relay_msgs_per_s=relayed,
        pickup=pickup,
    )
