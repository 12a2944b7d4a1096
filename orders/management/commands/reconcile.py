from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from orders.models import Region
from orders.reconciliation.models import UNRESOLVED_STATUSES
from orders.reconciliation.report import run_report
from orders.reconciliation.runs import ReconciliationBusy, RunOptions, reconciliation_run
from orders.reconciliation.sources import Scope

AGE = re.compile(r"^(\d+)([mhd])$")
AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
UNRESOLVED_SHOWN = 50


def since_value(text: str) -> datetime:
    """An ISO date or date-time (UTC unless it says otherwise), or an age such as 90m, 12h or 7d."""
    age = AGE.match(text.strip())
    if age:
        return timezone.now() - timedelta(**{AGE_UNITS[age[2]]: int(age[1])})
    moment = parse_datetime(text)
    if moment is None and (day := parse_date(text)) is not None:
        moment = datetime.combine(day, time.min)
    if moment is None:
        raise argparse.ArgumentTypeError(f"not a date, date-time or age (e.g. 12h, 7d): {text!r}")
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


class OrdersProgress:
    """A progress bar over the pages of orders, shown only when there is more than one page."""

    def __init__(self, console: Console, *, page_size: int) -> None:
        self.console, self.page_size = console, page_size
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            if total <= self.page_size:
                return
            self.progress = Progress(
                TextColumn("reconciling orders"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("orders", total=total)
        assert self.task is not None
        self.progress.update(self.task, completed=done, total=total)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@contextmanager
def orders_progress(console: Console, *, page_size: int) -> Iterator[OrdersProgress]:
    progress = OrdersProgress(console, page_size=page_size)
    try:
        yield progress
    finally:
        progress.stop()


def _amount(value: int | None, unit: str) -> str:
    return "" if value is None else f"{value} {unit}".strip()


def kinds_table(report: dict[str, Any]) -> Table:
    table = Table("kind", "modules", "found", "repaired", "unresolved", title="Discrepancies by kind")
    for row in report["by_kind"]:
        table.add_row(
            row["kind"], ", ".join(row["modules"]), str(row["found"]), str(row["repaired"]), str(row["unresolved"])
        )
    return table


def totals_table(report: dict[str, Any]) -> Table:
    table = Table(
        "currency",
        "orders",
        "fulfilled orders (minor)",
        "captured less refunded",
        "ledger sales",
        title="Totals of the orders checked",
    )
    for code, t in report["totals"].get("currencies", {}).items():
        table.add_row(
            code,
            str(t["orders"]),
            str(t["fulfilled_minor"]),
            str(t["net_captured_minor"]),
            str(t["ledger_sales_minor"]),
        )
    return table


def unresolved_table(report: dict[str, Any]) -> Table:
    table = Table("kind", "order", "what is wrong", "expected", "actual", "what to do", title="Left for a person")
    unresolved = [d for d in report["discrepancies"] if d["status"] in UNRESOLVED_STATUSES]
    for d in unresolved[:UNRESOLVED_SHOWN]:
        table.add_row(
            d["kind"],
            d["order_id"] or "",
            d["summary"],
            _amount(d["expected"], d["unit"]),
            _amount(d["actual"], d["unit"]),
            d["outcome"] or d["suggested_repair"],
        )
    if len(unresolved) > UNRESOLVED_SHOWN:
        table.caption = f"{len(unresolved) - UNRESOLVED_SHOWN} more in the admin"
    return table


class Command(BaseCommand):
    help = (
        "Compare what every module recorded (orders, payments and ledger, reservations and stock, shipments, "
        "sagas, outboxes, dead letters), store the run for the admin, and with --fix repair what the saga's own "
        "compensations, its recovery and the outbox can. Exits 1 while discrepancies are left unresolved."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", type=since_value, help="Only orders placed since: an ISO date or date-time, or an age (12h, 7d)."
        )
        parser.add_argument("--region", choices=Region.values, help="Only orders of this region.")
        parser.add_argument("--fix", action="store_true", help="Repair what is safe to repair automatically.")
        parser.add_argument("--json", dest="json_file", type=Path, help="Also write the run as JSON to this file.")
        parser.add_argument(
            "--outbox-age",
            type=float,
            default=settings.RECONCILIATION_OUTBOX_STALE_S,
            help="Seconds after which an unpublished outbox message counts as stalled.",
        )
        parser.add_argument("--page-size", type=int, default=500, help="Orders read per page.")

    def handle(self, *args: Any, **o: Any) -> None:
        console = Console(file=self.stdout, width=160)
        options = RunOptions(
            scope=Scope(since=o["since"], region=o["region"] or ""),
            fix=o["fix"],
            outbox_stale_after=timedelta(seconds=o["outbox_age"]),
            page_size=o["page_size"],
        )
        try:
            with orders_progress(console, page_size=options.page_size) as progress:
                run = reconciliation_run(options=options, on_progress=progress)
        except ReconciliationBusy as exc:
            raise CommandError(exc.detail, returncode=3) from exc
        report = run_report(run)
        console.print(kinds_table(report))
        console.print(totals_table(report))
        if run.unresolved:
            console.print(unresolved_table(report))
        console.print(
            f"run #{run.pk}: {run.orders_checked} orders checked, {run.found} discrepancies, "
            f"{run.repaired} repaired, {run.unresolved} unresolved"
        )
        if o["json_file"]:
            o["json_file"].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        if run.unresolved:
            raise CommandError(f"{run.unresolved} discrepancies left unresolved (run #{run.pk})")
