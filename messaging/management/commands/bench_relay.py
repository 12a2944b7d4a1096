from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from messaging.bench import DEFAULT_BENCH_REDIS_URL, BenchPlan, BenchRefused, BenchReport, StartPhase, Tick, run_bench

RELAY_TARGET_RATIO = 0.8
PICKUP_P50_TARGET_MS = 10.0
PICKUP_P99_TARGET_MS = 50.0


@contextmanager
def progress_phases(console: Console) -> Iterator[StartPhase]:
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:

        def start_phase(description: str, total: int) -> Tick:
            task_id = progress.add_task(description, total=total)
            return lambda done: progress.advance(task_id, done)

        yield start_phase


def summary_table(report: BenchReport) -> Table:
    pickup = report.pickup
    table = Table(title=f"Relay benchmark: {report.messages} messages, batches of {report.batch_size}")
    for column in ("measure", "value", "target"):
        table.add_column(column)
    table.add_row("plain Celery .delay()", f"{report.raw_publish_per_s:,.0f} msg/s", "reference")
    table.add_row("relay, commit to published", f"{report.relay_msgs_per_s:,.0f} msg/s", "")
    table.add_row("relay / plain Celery", f"{report.ratio:.0%}", _verdict(report.ratio >= RELAY_TARGET_RATIO, "≥ 80%"))
    table.add_row("pickup rate", f"{pickup.achieved_rate:,.0f} msg/s ({pickup.samples}/{pickup.sent} seen)", "")
    table.add_row("pickup p50", f"{pickup.p50_ms:.1f} ms", _verdict(pickup.p50_ms < PICKUP_P50_TARGET_MS, "< 10 ms"))
    table.add_row("pickup p99", f"{pickup.p99_ms:.1f} ms", _verdict(pickup.p99_ms < PICKUP_P99_TARGET_MS, "< 50 ms"))
    table.add_row("pickup max", f"{pickup.max_ms:.1f} ms", "")
    table.add_row(
        "of which row → relay claim", f"p50 {pickup.claim_p50_ms:.1f} ms, p99 {pickup.claim_p99_ms:.1f} ms", ""
    )
    cpu = ", ".join(f"{part} {ms:.2f}" for part, ms in pickup.cpu_ms_per_message.items())
    table.add_row("CPU per message (ms)", cpu, "")
    return table


def _verdict(met: bool, target: str) -> str:
    return f"[green]{target} ok[/green]" if met else f"[red]{target} missed[/red]"


class Command(BaseCommand):
    help = "Relay throughput against plain Celery publishing, and pickup latency at a steady rate."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--messages", type=int, default=20_000, help="Messages for the throughput runs.")
        parser.add_argument("--rate", type=float, default=500.0, help="Outbox rows per second for the latency run.")
        parser.add_argument("--latency-seconds", type=float, default=10.0, help="Length of the latency run.")
        parser.add_argument("--batch-size", type=int, default=settings.MESSAGING_RELAY_BATCH_SIZE)
        parser.add_argument(
            "--worker-processes",
            type=int,
            default=1,
            help="Celery workers for the latency run (default: as `make run`).",
        )
        parser.add_argument(
            "--worker-pool", default="threads", choices=("solo", "threads"), help="Their pool (default: as `make run`)."
        )
        parser.add_argument("--redis-url", default=DEFAULT_BENCH_REDIS_URL, help="A Redis database of its own.")

    def handle(self, *args: Any, **options: Any) -> None:
        plan = BenchPlan(
            messages=options["messages"],
            rate=options["rate"],
            latency_seconds=options["latency_seconds"],
            batch_size=options["batch_size"],
            redis_url=options["redis_url"],
            worker_processes=options["worker_processes"],
            worker_pool=options["worker_pool"],
        )
        console = Console()
        try:
            with progress_phases(console) as start_phase:
                report = run_bench(plan, start_phase)
        except BenchRefused as exc:
            raise CommandError(str(exc)) from exc
        console.print(summary_table(report))
        self.stdout.write(json.dumps(report.figures()))
