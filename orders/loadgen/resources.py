"""CPU time and memory of every process on the box during a phase, sampled with psutil.

Kinds: the platform's own processes (web, worker, batch, beat, relay); the
PostgreSQL backends of the benchmark's database (``postgres``); the server's
shared PostgreSQL processes (postmaster, checkpointer, WAL writer, …:
``postgres-shared``); the Redis server (``redis``, shared with whatever else
uses it, recognised by its port); every other long-lived process (``other``). ``generator`` is the
benchmark process itself (load generation and this sampling). What the box was busy with beyond all of these is
``short-lived``: processes born and gone between two samples (chiefly
PostgreSQL backends of clients that connect per task) and interrupt work.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field

import psutil

from orders.loadgen.processes import Platform

APP_KINDS = ("web", "worker", "batch", "beat", "relay")
SERVER_KINDS = ("postgres", "postgres-shared", "redis")
SHORT_LIVED = "short-lived"
OTHER = "other"
PG_AUX_MARKERS = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication launcher",
    "archiver",
    "stats collector",
)
SAMPLED = ["name", "cmdline", "cpu_times", "memory_info", "ppid"]
MB = 1024 * 1024


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    per_pid: dict[int, tuple[str, float]]
    system_busy: float
    own_cpu: float


@dataclass(frozen=True)
class CpuUsage:
    """CPU seconds spent between two snapshots, by kind."""

    wall_s: float
    by_kind: dict[str, float]
    generator_s: float

    @property
    def app_s(self) -> float:
        return sum(self.by_kind.get(kind, 0.0) for kind in APP_KINDS)

    @property
    def servers_s(self) -> float:
        return sum(self.by_kind.get(kind, 0.0) for kind in SERVER_KINDS)

    @property
    def platform_s(self) -> float:
        """The platform's processes, its PostgreSQL and Redis, and the short-lived processes."""
        return self.app_s + self.servers_s + self.by_kind.get(SHORT_LIVED, 0.0)

    @property
    def other_s(self) -> float:
        return self.by_kind.get(OTHER, 0.0)


def server_kind(name: str, cmdline: str, database: str, redis_port: int) -> str | None:
    if name == "redis-server":
        return "redis" if f":{redis_port}" in cmdline else OTHER
    if not name.startswith("postgres"):
        return None
    if f" {database} " in f"{cmdline} ":
        return "postgres"
    if " -D " in f" {cmdline} " or any(marker in cmdline for marker in PG_AUX_MARKERS):
        return "postgres-shared"
    return OTHER


def platform_pids(platform: Platform, parents: dict[int, int]) -> dict[int, str]:
    """Every process the platform started, and their descendants, by kind; ``parents`` maps pid → ppid."""
    kinds = {child.proc.pid: child.kind for child in platform.children}
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, str] = {}
    stack = list(kinds.items())
    while stack:
        pid, kind = stack.pop()
        found[pid] = kind
        stack += [(descendant, kind) for descendant in children.get(pid, [])]
    return found


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def system_busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0) - getattr(times, "steal", 0.0)


@dataclass
class ResourceMonitor:
    platform: Platform
    database: str
    redis_port: int
    interval: float = 2.0
    peak_rss: dict[str, int] = field(default_factory=dict)
    peak_kind_rss: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._platform_pids: dict[int, str] = {}
        self._cpu: dict[int, tuple[str, float]] = {}
        self._thread = threading.Thread(target=self._run, name="resource-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._sample()
            self._stop.wait(self.interval)

    def _kind(self, proc: psutil.Process) -> str:
        kind = self._platform_pids.get(proc.pid)
        if kind is None:
            cmdline = " ".join(proc.info["cmdline"] or [])
            kind = server_kind(proc.info["name"] or "", cmdline, self.database, self.redis_port)
        return kind or OTHER

    def _sample(self) -> None:
        procs = list(psutil.process_iter(SAMPLED))
        self._platform_pids = platform_pids(self.platform, {p.pid: p.info["ppid"] or 0 for p in procs})
        kind_rss: dict[str, int] = {}
        me = os.getpid()
        for proc in procs:
            cpu, memory = proc.info["cpu_times"], proc.info["memory_info"]
            if proc.pid == me or cpu is None or memory is None:
                continue
            kind = self._kind(proc)
            self._cpu[proc.pid] = (kind, cpu.user + cpu.system)
            if kind != OTHER:
                self.peak_rss[kind] = max(self.peak_rss.get(kind, 0), memory.rss)
                kind_rss[kind] = kind_rss.get(kind, 0) + memory.rss
        for kind, total in kind_rss.items():
            self.peak_kind_rss[kind] = max(self.peak_kind_rss.get(kind, 0), total)

    def snapshot(self) -> CpuSnapshot:
        with self._lock:
            self._sample()
            return CpuSnapshot(
                at=time.monotonic(),
                per_pid=dict(self._cpu),
                system_busy=system_busy_seconds(),
                own_cpu=own_cpu_seconds(),
            )

    def peak_rss_mb(self) -> dict[str, float]:
        """Largest resident set of a single process, by kind."""
        return {kind: round(rss / MB, 1) for kind, rss in sorted(self.peak_rss.items())}

    def peak_kind_rss_mb(self) -> dict[str, float]:
        """Largest resident set of all processes of a kind together."""
        return {kind: round(rss / MB, 1) for kind, rss in sorted(self.peak_kind_rss.items())}


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> CpuUsage:
    by_kind: dict[str, float] = {}
    for pid, (kind, seconds) in after.per_pid.items():
        base = before.per_pid[pid][1] if pid in before.per_pid else 0.0
        by_kind[kind] = by_kind.get(kind, 0.0) + max(0.0, seconds - base)
    own = after.own_cpu - before.own_cpu
    busy = after.system_busy - before.system_busy
    by_kind[SHORT_LIVED] = max(0.0, busy - sum(by_kind.values()) - own)
    return CpuUsage(
        wall_s=after.at - before.at,
        by_kind={kind: round(seconds, 2) for kind, seconds in sorted(by_kind.items())},
        generator_s=round(own, 2),
    )
