"""``statement_costs`` counts and times every statement of an order, client and server side."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from config.database import MODULE_ALIASES
from orders.loadgen.catalogue import default_catalogue
from orders.loadgen.statements import COSTS_CLIENT, PLACE, SAGA, backend_cpu_ns, statement_costs
from orders.models import ApiClient, Order


def test_every_statement_of_an_order_is_counted_once_per_order_and_timed() -> None:
    report = statement_costs(catalogue=default_catalogue("COSTTEST"), orders=3, lines=2, warm_up=1)

    assert report.outcomes == {"confirmed": 3}
    assert report.server_measured  # the test server runs on this machine
    by_part = {part: report.totals_us(part)[0] for part in (PLACE, SAGA)}
    # The price read and the placement; the saga's statements on its six aliases.
    assert by_part == {PLACE: 2.0, SAGA: 15.0}
    looks = [c for c in report.costs.values() if c.sql.startswith("SELECT state, version")]
    assert [(c.alias, c.calls) for c in looks] == [("orders", 9)]  # three looks per order
    # Every module's alias but the messaging kernel's.
    assert {c.alias for c in report.costs.values() if c.part == SAGA} == set(MODULE_ALIASES) - {"messaging"}
    assert all(c.client_ns > 0 for c in report.costs.values())
    assert sum(c.server_ns for c in report.costs.values()) > 0
    assert report.per_order()[0].server_ns == max(c.server_ns for c in report.costs.values())


def test_only_a_postgres_process_of_this_machine_is_read() -> None:
    assert backend_cpu_ns(2**22 + 12345) is None  # no such process here
    assert backend_cpu_ns(os.getpid()) is None  # a process, but not a PostgreSQL backend


def test_runs_place_their_orders_for_one_client_kept_from_run_to_run() -> None:
    for _ in range(2):
        statement_costs(catalogue=default_catalogue("COSTTEST"), orders=1, warm_up=0)

    (client,) = ApiClient.objects.filter(name=COSTS_CLIENT)
    assert Order.objects.filter(client_id=client.id).count() == 2


def test_the_command_prints_a_table_and_writes_the_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "costs.json"

    call_command("statement_costs", "--orders", "2", "--json", str(out))

    figures = json.loads(out.read_text())
    assert figures["orders"] == 2
    assert figures["statements_per_order"] == 17.0
    assert figures["server_us_per_order"] > 0
    assert {s["part"] for s in figures["statements"]} == {PLACE, SAGA}
    assert "Statements per order" in capsys.readouterr().out


@override_settings(PAYMENT_GATEWAY="payments.adapters.Stripe")
def test_it_refuses_to_place_orders_through_a_real_gateway() -> None:
    with pytest.raises(CommandError, match="fake gateway"):
        call_command("statement_costs", "--orders", "1")
