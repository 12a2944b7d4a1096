"""An isolated platform as child processes: web (granian, WSGI), saga workers, batch worker, beat, relay.

Each child runs in a session of its own, so a Ctrl-C reaches only the
benchmark, which then stops them in order; ``stop`` ends exactly the process
groups it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

SAGA_QUEUES = "saga.eu,saga.us,saga.apac,compensation,events,default"
BATCH_QUEUE = "batch"
STOP_GRACE_S = 20.0


@dataclass(frozen=True)
class Topology:
    web_workers: int = 2
    web_threads: int = 8
    saga_workers: int = 1
    # Eight, not four: each thread waits out the gateway and the carrier (15 ms an order with the fakes' 5 ms),
    # so four left a fifth of the box idle at capacity. Each thread holds a session per module (six).
    saga_concurrency: int = 8
    saga_pool: str = "threads"

    def describe(self) -> str:
        return (
            f"granian (WSGI) {self.web_workers} workers x {self.web_threads} threads; "
            f"{self.saga_workers} saga worker(s), {self.saga_pool} pool x {self.saga_concurrency}, prefetch 1; "
            "1 batch worker (solo); beat; 1 relay"
        )


@dataclass
class Child:
    kind: str
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "config", *args]


@dataclass
class Platform:
    topology: Topology
    log_dir: Path
    port: int = field(default_factory=free_port)
    children: list[Child] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_names(self) -> list[str]:
        return [f"bench-saga{n}-{os.getpid()}@{socket.gethostname()}" for n in range(self.topology.saga_workers)]

    def batch_name(self) -> str:
        return f"bench-batch-{os.getpid()}@{socket.gethostname()}"

    def commands(self) -> list[tuple[str, str, list[str]]]:
        t = self.topology
        # As the Procfile's web: granian's Rust HTTP server, the WSGI application in blocking threads.
        web = [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(self.port)]
        web += ["--workers", str(t.web_workers), "--blocking-threads", str(t.web_threads), "--runtime-threads", "1"]
        web += ["--blocking-threads-idle-timeout", "600", "--respawn-failed-workers", "--workers-kill-timeout", "15"]
        web += ["config.wsgi:application"]
        # As the Procfile's: no heartbeat events, gossip or start-up sync between workers (README).
        quiet = ["--without-heartbeat", "--without-gossip", "--without-mingle"]
        saga = ["worker", "--loglevel", "INFO", "--concurrency", str(t.saga_concurrency), "--pool", t.saga_pool]
        saga += ["--queues", SAGA_QUEUES, "--prefetch-multiplier", "1", *quiet]
        batch = ["worker", "--loglevel", "INFO", "--concurrency", "1", "--pool", "solo", "--queues", BATCH_QUEUE]
        batch += quiet
        beat = ["beat", "--loglevel", "INFO", "--schedule", str(self.log_dir / "celerybeat-schedule")]
        workers = [("worker", name.split("@")[0], _celery(*saga, "--hostname", name)) for name in self.worker_names()]
        return [
            ("web", "web", web),
            *workers,
            ("batch", "batch", _celery(*batch, "--hostname", self.batch_name())),
            ("beat", "beat", _celery(*beat)),
            ("relay", "relay", [sys.executable, "manage.py", "relay"]),
        ]

    def environment(self) -> dict[str, str]:
        metrics = self.log_dir / "metrics"
        metrics.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "DJANGO_DEBUG": "0",
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        }

    def start(self) -> None:
        env = self.environment()
        for kind, name, args in self.commands():
            log = self.log_dir / f"{name}.log"
            with log.open("ab") as out:
                proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                    args, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            self.children.append(Child(kind=kind, name=name, proc=proc, log=log))

    def dead(self) -> list[Child]:
        return [child for child in self.children if child.proc.poll() is not None]

    def tail(self, child: Child, chars: int = 3000) -> str:
        return child.log.read_text(errors="replace")[-chars:]

    def stop(self, kinds: Collection[str] | None = None) -> None:
        """SIGTERM every group we started (of ``kinds``, when given), wait, then SIGKILL what is left."""
        stopping = [child for child in self.children if kinds is None or child.kind in kinds]
        for child in stopping:
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in stopping:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.proc.wait()
            _signal_group(child, signal.SIGKILL)
        self.children = [child for child in self.children if child not in stopping]


def _signal_group(child: Child, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.proc.pid, signum)
