"""``manage.py statement_costs``: what each statement of an order costs, client and server side."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.table import Table

from orders.loadgen.catalogue import default_catalogue
from orders.loadgen.progress import output_console
from orders.loadgen.statements import PLACE, SAGA, CostReport, StatementCost, statement_costs

FAKES = ("payments.gateway.FakePaymentGateway", "shipping.carrier.FakeCarrier")


def _table(report: CostReport) -> Table:
    table = Table(title=f"Statements per order ({report.orders} orders, driven one after the other)")
    for column in ("part", "alias", "per order", "server µs", "client µs", "statement"):
        table.add_column(column, justify="right" if "µs" in column or column == "per order" else "left")
    for cost in report.per_order():
        calls, client, server = report.each_order(cost)
        shown = f"{server:.0f}" if report.server_measured else "—"
        table.add_row(cost.part, cost.alias, f"{calls:.2f}", shown, f"{client:.0f}", cost.sql)
    for part in (PLACE, SAGA, None):
        statements, client, server = report.totals_us(part)
        shown = f"{server:.0f}" if report.server_measured else "—"
        table.add_row(part or "all", "", f"{statements:.2f}", shown, f"{client:.0f}", "total", style="bold")
    return table


def _figures(report: CostReport) -> dict[str, Any]:
    statements, client, server = report.totals_us()
    return {
        "orders": report.orders,
        "outcomes": dict(report.outcomes),
        "statements_per_order": round(statements, 2),
        "client_us_per_order": round(client, 1),
        "server_us_per_order": round(server, 1) if report.server_measured else None,
        "statements": [_statement(report, c) for c in report.per_order()],
    }


def _statement(report: CostReport, cost: StatementCost) -> dict[str, Any]:
    calls, client, server = report.each_order(cost)
    return {
        "part": cost.part,
        "alias": cost.alias,
        "sql": cost.sql,
        "per_order": round(calls, 2),
        "client_us": round(client, 1),
        "server_us": round(server, 1) if report.server_measured else None,
    }


class Command(BaseCommand):
    help = (
        "Place orders and drive their sagas in this process, one after the other, and show every statement "
        "sent: how many per order and the CPU each costs in this process and in its PostgreSQL backend (when "
        "the server runs on this machine). Places real orders: only with the fake gateway and carrier."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, default=300, help="Orders measured (after 20 not measured).")
        parser.add_argument("--lines", type=int, default=2, help="Lines per order.")
        parser.add_argument("--json", dest="json_path", help="Also write the figures to this file.")

    def handle(self, *args: Any, **options: Any) -> None:
        if (settings.PAYMENT_GATEWAY, settings.SHIPPING_CARRIER) != FAKES:
            raise CommandError("statement_costs places real orders: it runs only with the fake gateway and carrier")
        if options["orders"] < 1 or options["lines"] < 1:
            raise CommandError("--orders and --lines must be at least 1")
        report = statement_costs(catalogue=default_catalogue("COSTS"), orders=options["orders"], lines=options["lines"])
        console = output_console()
        console.print(_table(report))
        if not report.server_measured:
            console.print("server CPU not measured: PostgreSQL's backends are not processes of this machine")
        figures = _figures(report)
        if options["json_path"]:
            with open(options["json_path"], "w") as out:
                json.dump(figures, out, indent=2)
        self.stdout.write(json.dumps({k: v for k, v in figures.items() if k != "statements"}))
