from __future__ import annotations

import asyncio
import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.loadgen.catalogue import DEFAULT_UNITS, default_catalogue, seed_stock
from orders.loadgen.client import DEFAULT_MAX_CONNECTIONS
from orders.loadgen.mix import OrderFactory, OrderMix
from orders.loadgen.observer import PollPolicy, add_orders_per_get_argument
from orders.loadgen.progress import live_progress, output_console
from orders.loadgen.render import load_table
from orders.loadgen.report import LoadReport, build_report
from orders.loadgen.runner import POLL, WAIT, LoadPlan, run_load
from orders.loadgen.schedule import Phase, parse_phases, spike_phases
from orders.loadgen.setup import new_api_token, run_id

DEFAULT_RATE = 12.0
DEFAULT_SECONDS = 30.0


def _add_shape(parser: ArgumentParser) -> None:
    shape = parser.add_argument_group("load shape")
    loop = shape.add_mutually_exclusive_group()
    loop.add_argument("--rate", type=float, help="Orders per second, open loop (arrivals do not wait for answers).")
    loop.add_argument("--concurrency", type=int, help="Clients that each place an order and await its end.")
    loop.add_argument("--phases", help="Open-loop phases RATExSECONDS, comma-separated, e.g. 12x20,120x60,12x40.")
    loop.add_argument("--spike", action="store_true", help="A step from --spike-base to --spike-factor x and back.")
    shape.add_argument("--orders", type=int, help="Orders to place (with --rate: the duration follows).")
    shape.add_argument("--duration", type=float, help="Seconds of load.")
    shape.add_argument("--spike-base", type=float, default=12.0, help="Base rate of --spike (orders/s).")
    shape.add_argument("--spike-factor", type=float, default=10.0)
    shape.add_argument("--spike-seconds", default="20,60,40", help="Seconds before, during and after the spike.")
    shape.add_argument("--poisson", action="store_true", help="Poisson arrivals instead of evenly spaced ones.")
    shape.add_argument("--drain", type=float, default=120.0, help="Most seconds to wait for unfinished orders.")
    shape.add_argument("--stall", type=float, default=60.0, help="End the drain when no order finished for this long.")


def _add_observation(parser: ArgumentParser) -> None:
    group = parser.add_argument_group("how the final state is observed")
    group.add_argument(
        "--observe",
        choices=[POLL, WAIT],
        help="GET polling (default with an arrival rate) or `Prefer: wait` on the POST (default with --concurrency).",
    )
    group.add_argument("--wait", type=float, default=10.0, help="N of `Prefer: wait=N` with --observe wait.")
    add_orders_per_get_argument(group)
    group.add_argument(
        "--lookups-per-s",
        type=float,
        default=PollPolicy.lookups_per_s,
        help="GETs per second at most with --orders-per-get above 1.",
    )
    group.add_argument("--first-poll", type=float, default=0.5, help="Seconds after the POST of the first GET.")
    group.add_argument(
        "--max-polls-per-s",
        type=float,
        help="GET budget with --orders-per-get 1 (default 1.5 x the peak order rate).",
    )
    group.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout per request, seconds.")
    group.add_argument(
        "--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS, help="HTTP requests in flight at most."
    )


def _add_mix(parser: ArgumentParser) -> None:
    group = parser.add_argument_group("order mix and stock")
    group.add_argument("--declined-share", type=float, default=0.05, help="Orders paid with tok_declined.")
    group.add_argument("--review-share", type=float, default=0.02, help="Large orders shipped out of region.")
    group.add_argument("--hot-share", type=float, default=0.3, help="Orders with a line of the one hot SKU.")
    group.add_argument("--eventual-share", type=float, default=0.35, help="Other lines on EVENTUAL SKUs.")
    group.add_argument("--no-seed", action="store_true", help="Do not set the load SKUs' stock.")
    group.add_argument("--stock-units", type=int, default=DEFAULT_UNITS)
    group.add_argument("--seed", type=int, default=1, help="Random seed of the mix and arrivals.")


def load_phases(options: dict[str, Any]) -> tuple[Phase, ...]:
    if options["phases"]:
        return parse_phases(options["phases"])
    if options["spike"]:
        before, peak, after = (float(s) for s in options["spike_seconds"].split(","))
        return spike_phases(
            base=options["spike_base"], factor=options["spike_factor"], before=before, peak=peak, after=after
        )
    rate = options["rate"] or DEFAULT_RATE
    seconds = options["duration"] or (options["orders"] / rate if options["orders"] else DEFAULT_SECONDS)
    return (Phase(name=f"{rate:g}/s", rate=rate, seconds=seconds),)


def load_plan(options: dict[str, Any]) -> LoadPlan:
    concurrency = options["concurrency"] or 0
    phases = () if concurrency else load_phases(options)
    peak = max((phase.rate for phase in phases), default=concurrency * 2.0)
    polls = options["max_polls_per_s"] or max(20.0, 1.5 * peak)
    return LoadPlan(
        phases=phases,
        concurrency=concurrency,
        orders=options["orders"],
        duration=options["duration"],
        drain_s=options["drain"],
        stall_s=options["stall"],
        observe=options["observe"] or (WAIT if concurrency else POLL),
        wait_s=options["wait"],
        timeout_s=options["timeout"],
        max_connections=options["max_connections"],
        poisson=options["poisson"],
        seed=options["seed"],
        poll=PollPolicy(
            first_poll=options["first_poll"],
            polls_per_s=polls,
            orders_per_get=options["orders_per_get"],
            lookups_per_s=options["lookups_per_s"],
        ),
    )


def order_mix(options: dict[str, Any]) -> OrderMix:
    return OrderMix(
        declined_share=options["declined_share"],
        review_share=options["review_share"],
        hot_share=options["hot_share"],
        eventual_share=options["eventual_share"],
    )


def write_json(path: str, report: LoadReport) -> None:
    Path(path).write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")


class Command(BaseCommand):
    help = "Drive a running platform over HTTP and report throughput, POST→final latency, outcomes and errors."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Base URL of the running platform.")
        parser.add_argument("--token", help="Bearer token of a merchant client (default: create a client).")
        parser.add_argument("--json", dest="json_path", help="Also write the figures to this file.")
        _add_shape(parser)
        _add_observation(parser)
        _add_mix(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["concurrency"] is not None and options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        try:
            plan, mix = load_plan(options), order_mix(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        catalogue = default_catalogue()
        if not options["no_seed"]:
            seed_stock(catalogue, units=options["stock_units"])
        token = options["token"] or new_api_token()
        factory = OrderFactory(mix=mix, catalogue=catalogue, run_id=run_id(), seed=options["seed"])
        console = output_console()
        try:
            with live_progress(console, "orders") as progress:
                load = run_load(plan, base_url=options["url"], token=token, factory=factory, progress=progress)
                result = asyncio.run(load)
        except KeyboardInterrupt:
            raise CommandError("interrupted before the figures were complete") from None
        report = build_report(result)
        console.print(load_table(report, f"Load test against {options['url']}"))
        if options["json_path"]:
            write_json(options["json_path"], report)
        self._fail_if_unfinished(report)

    def _fail_if_unfinished(self, report: LoadReport) -> None:
        if report.unfinished or report.lost:
            raise CommandError(f"{report.unfinished} orders unfinished and {report.lost} lost after the drain")
