from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.loadgen.bench import BenchPlan, run_bench
from orders.loadgen.isolation import NotIsolated
from orders.loadgen.mix import OrderMix
from orders.loadgen.observer import add_orders_per_get_argument
from orders.loadgen.processes import Topology
from orders.loadgen.profiles import CPU, WALL, ProfilerMissing
from orders.loadgen.progress import output_console
from orders.loadgen.readiness import PlatformFailed
from orders.loadgen.reference import ReferenceUnavailable
from orders.loadgen.runner import POLL, WAIT
from orders.loadgen.summary import figures, ok, profile_table, summary_table


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _seconds(text: str) -> tuple[float, float, float]:
    before, peak, after = (float(part) for part in text.split(","))
    return before, peak, after


def bench_plan(options: dict[str, Any]) -> BenchPlan:
    topology = Topology(
        web_workers=options["web_workers"],
        web_threads=options["web_threads"],
        saga_workers=options["saga_workers"],
        saga_concurrency=options["saga_concurrency"],
        saga_pool=options["saga_pool"],
    )
    plan = BenchPlan(
        topology=topology,
        observe=options["observe"],
        orders_per_get=options["orders_per_get"],
        mix=OrderMix(),
        seed=options["seed"],
    )
    if options["quick"] or os.environ.get("BENCH_QUICK", "") not in ("", "0"):
        plan = plan.quick_version()
    overrides = {
        "rate": options["rate"],
        "duration": options["duration"],
        "spike_base": options["spike_base"],
        "spike_factor": options["spike_factor"],
        "spike_seconds": _seconds(options["spike_seconds"]) if options["spike_seconds"] else None,
        "reference_tasks": options["reference_tasks"],
        "drain_s": options["drain"],
        "profile_dir": Path(options["profile"]) if options["profile"] else None,
        "profile_mode": options["profile_mode"],
    }
    return replace(plan, **{name: value for name, value in overrides.items() if value is not None})


class Command(BaseCommand):
    help = (
        "Start an isolated platform (own database and Redis db), measure plain Celery no-ops as a reference, "
        "a sustained load and a 10x spike; print one summary, the last line a JSON object."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quick", action="store_true", help="Short run for development (also BENCH_QUICK=1).")
        parser.add_argument("--rate", type=float, help="Sustained orders per second (default 120; quick 30).")
        parser.add_argument("--duration", type=float, help="Seconds of sustained load (default 60; quick 10).")
        parser.add_argument("--spike-base", type=float, help="Base rate around the spike (default 12; quick 3).")
        parser.add_argument("--spike-factor", type=float, help="The spike's multiple of the base (default 10).")
        parser.add_argument("--spike-seconds", help="Seconds before,during,after the spike (default 20,60,40).")
        parser.add_argument("--reference-tasks", type=int, help="No-op tasks of the reference (default 5000).")
        parser.add_argument(
            "--drain", type=float, help="Most seconds to wait for unfinished orders after each load (default 900)."
        )
        parser.add_argument("--observe", choices=[POLL, WAIT], default=POLL)
        add_orders_per_get_argument(parser)
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--web-threads", type=int, default=8)
        parser.add_argument("--saga-workers", type=int, default=1, help="Saga worker processes.")
        parser.add_argument(
            "--saga-concurrency", type=int, default=Topology.saga_concurrency, help="Threads per saga worker."
        )
        parser.add_argument(
            "--saga-pool", choices=["threads", "solo", "prefork"], default="threads", help="Saga workers' pool."
        )
        parser.add_argument("--profile", metavar="DIR", help="py-spy the web, worker and relay during the load.")
        parser.add_argument(
            "--profile-mode", choices=[CPU, WALL], default=CPU, help="cpu: GIL holder only; wall: waits too."
        )
        parser.add_argument("--json", dest="json_path", help="Also write the summary's figures to this file.")
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        signal.signal(signal.SIGTERM, _terminated)
        console = output_console()
        try:
            plan = bench_plan(options)
        except ValueError as exc:
            raise CommandError(f"--spike-seconds takes three numbers, before,during,after: {exc}") from exc
        try:
            result = run_bench(plan, console)
        except (NotIsolated, PlatformFailed, ReferenceUnavailable, ProfilerMissing) as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            console.print("[bold red]interrupted; every process the benchmark started has been stopped[/]")
            raise SystemExit(130) from None
        console.print(summary_table(result))
        if result.measured.profile:
            console.print(profile_table(result.measured.profile, result.plan.profile_mode))
        summary = figures(result)
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(summary, indent=2) + "\n")
        if not ok(result):
            console.print("[bold red]FAILED: orders lost, stuck or unfinished, or the modules' books disagree[/]")
        self.stdout.write(json.dumps(summary))
        if not ok(result):
            raise SystemExit(1)
