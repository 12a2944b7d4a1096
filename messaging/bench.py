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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connections, transaction
from django.test import override_settings
from django.utils import timezone

from config.celery import app as celery_app
from messaging.models import KernelOutbox, RelayHeartbeat
from messaging.outbox import outbox_append
from messaging.redis import redis_client
from messaging.relay import drain_batch, outbox_backlog, outbox_models
from messaging.tasks import BENCH_MESSAGE_TYPE, BENCH_QUEUE, PICKUP_KEY, bench_noop

DEFAULT_BENCH_REDIS_URL = "redis://127.0.0.1:6379/13"
TICK_EVERY = 500
WARMUP_MESSAGES = 50

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


@dataclass(frozen=True)
class PickupLatency:
    sent: int
    samples: int
    achieved_rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float


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
        raise RuntimeError(f"relayed {published} rows and queued {queued} messages, expected {count}")
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


def start_bench_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", BENCH_QUEUE, "--pool", "threads"]
    args += ["-c", "4", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
    args += ["--hostname", f"bench-{os.getpid()}@%h"]
    return _spawn(args, env=env, log=log)


def start_bench_relay(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return _spawn([sys.executable, "manage.py", "relay", "--poll-interval", "1.0"], env=env, log=log)


def await_worker(worker: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"bench worker exited:\n{log.read_text(errors='replace')[-3000:]}")
        if celery_app.control.ping(timeout=0.5):
            return
    raise RuntimeError(f"bench worker did not answer within {timeout}s")


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


def append_one(sequence: int) -> None:
    """One business-sized transaction: a single outbox row."""
    with transaction.atomic(using=KernelOutbox.objects.db):
        outbox_append(
            model=KernelOutbox,
            message_type=BENCH_MESSAGE_TYPE,
            aggregate_id=f"bench-{sequence}",
            sequence=sequence,
            payload={},
            correlation_id="bench",
        )


def append_at_rate(count: int, rate: float, tick: Tick) -> float:
    """Append ``count`` rows, one per transaction, at ``rate`` per second; return the rate achieved."""
    started = time.monotonic()
    for sequence in range(count):
        delay = started + sequence / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        append_one(sequence)
        tick(1)
    return count / (time.monotonic() - started)


def await_pickups(count: int, timeout: float) -> list[float]:
    deadline = time.monotonic() + timeout
    while redis_client().llen(PICKUP_KEY) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return [float(v) for v in redis_client().lrange(PICKUP_KEY, 0, -1)]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in (0, 100]."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def sample_pickups(rate: float, seconds: float, tick: Tick) -> PickupLatency:
    """Warm the relay and worker up, then append at ``rate`` and collect what the consumer recorded."""
    append_at_rate(WARMUP_MESSAGES, rate, lambda _n: None)
    await_pickups(WARMUP_MESSAGES, timeout=10.0)
    purge_bench_queue()
    count = max(1, round(rate * seconds))
    achieved = append_at_rate(count, rate, tick)
    waited = await_pickups(count, timeout=10.0)
    if not waited:
        raise RuntimeError("the bench consumer recorded no pickups")
    return PickupLatency(
        sent=count,
        samples=len(waited),
        achieved_rate=achieved,
        p50_ms=percentile(waited, 50),
        p99_ms=percentile(waited, 99),
        max_ms=max(waited),
    )


def measure_pickup_latency(plan: BenchPlan, tick: Tick, log_dir: Path) -> PickupLatency:
    env = _subprocess_env(plan.redis_url)
    worker_log, relay_log = log_dir / "worker.log", log_dir / "relay.log"
    worker = start_bench_worker(env, worker_log)
    relay: subprocess.Popen[bytes] | None = None
    try:
        await_worker(worker, worker_log)
        relay = start_bench_relay(env, relay_log)
        await_relay(relay, relay_log)
        return sample_pickups(plan.rate, plan.latency_seconds, tick)
    finally:
        if relay is not None:
            stop_process(relay)
            RelayHeartbeat.objects.filter(relay_id=relay_id_of(relay)).delete()
        stop_process(worker)


# --- the whole run


def run_bench(plan: BenchPlan, start_phase: StartPhase) -> BenchReport:
    ensure_platform_idle()
    vacuum_outbox()
    with bench_broker(plan.redis_url), leaves_no_keys(), tempfile.TemporaryDirectory(prefix="bench-relay-") as logs:
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
