"""What each statement of an order costs, on both sides of the wire.

Orders are placed and driven here, in this process, one after the other, through the same services the web and
the saga worker call (no HTTP, no Celery): every statement is timed on the client (this thread's CPU) and on the
server (the CPU of the PostgreSQL backend serving its alias, from ``/proc/<pid>/schedstat``, when the server
runs on this machine). What it answers: which statements an order sends, how many, and what each costs, which
a sampling profile of the whole platform under load spreads too thin to read.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connections

from config.database import ALL_ALIASES
from orders.loadgen.catalogue import Catalogue, seed_stock
from orders.models import ApiClient
from orders.saga import saga_run
from orders.services.clients import api_client_create, api_client_rotate
from orders.services.placement import OrderRequest, order_place

# After a statement's answer the backend may still be at work (statistics, cleanup); a short pause lets it
# finish before its CPU is read again, so that the work is charged to this statement, not to the next.
SETTLE_S = 0.0003
SQL_SHOWN = 90
PLACE = "place"
COSTS_CLIENT = "statement-costs"
SAGA = "saga"


@dataclass
class StatementCost:
    alias: str
    sql: str
    part: str
    calls: int = 0
    client_ns: int = 0
    server_ns: int = 0


@dataclass
class CostReport:
    orders: int
    server_measured: bool
    costs: dict[tuple[str, str, str], StatementCost] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)

    def per_order(self) -> list[StatementCost]:
        """The statements, costliest on the server first (on the client, without server figures)."""
        return sorted(self.costs.values(), key=lambda c: (-c.server_ns, -c.client_ns))

    def each_order(self, cost: StatementCost) -> tuple[float, float, float]:
        """``cost`` per order: statements, client µs, server µs."""
        n = max(self.orders, 1)
        return cost.calls / n, cost.client_ns / n / 1000, cost.server_ns / n / 1000

    def totals_us(self, part: str | None = None) -> tuple[float, float, float]:
        """Statements, client µs and server µs per order (of ``part`` only, when given)."""
        chosen = [c for c in self.costs.values() if part is None or c.part == part]
        total = StatementCost(
            alias="",
            sql="",
            part=part or "",
            calls=sum(c.calls for c in chosen),
            client_ns=sum(c.client_ns for c in chosen),
            server_ns=sum(c.server_ns for c in chosen),
        )
        return self.each_order(total)


def is_local_backend(pid: int) -> bool:
    """Whether process ``pid`` of this machine is a PostgreSQL one (a server elsewhere, or in a container with its
    own process ids, is not measured)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


def backend_cpu_ns(pid: int) -> int | None:
    """A PostgreSQL backend's CPU time so far, in ns: ``None`` unless process ``pid`` of this machine is a
    ``postgres`` one."""
    return _cpu_ns(pid) if is_local_backend(pid) else None


def _cpu_ns(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _costs_client() -> uuid.UUID:
    """The client the measured orders are placed for: one, kept from run to run (its token is never used)."""
    try:
        client, _ = api_client_rotate(name=COSTS_CLIENT)
    except ApiClient.DoesNotExist:
        client, _ = api_client_create(name=COSTS_CLIENT)
    return client.id


def _backend_pids() -> dict[str, int]:
    pids = {}
    for alias in ALL_ALIASES:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pids[alias],) = cursor.fetchone()
    return pids


@contextmanager
def _timed(report: CostReport, pids: dict[str, int], part: Callable[[], str]) -> Iterator[None]:
    def spy_for(alias: str) -> Callable[..., Any]:
        pid = pids[alias]

        def spy(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
            server_before = _cpu_ns(pid) if report.server_measured else None
            client_before = time.thread_time_ns()
            try:
                return execute(sql, params, many, context)
            finally:
                client = time.thread_time_ns() - client_before
                key = (part(), alias, " ".join(sql.split())[:SQL_SHOWN])
                cost = report.costs.setdefault(key, StatementCost(alias=alias, sql=key[2], part=key[0]))
                cost.calls += 1
                cost.client_ns += client
                if server_before is not None:
                    time.sleep(SETTLE_S)
                    cost.server_ns += (_cpu_ns(pid) or server_before) - server_before

        return spy

    with ExitStack() as stack:
        for alias in pids:
            stack.enter_context(connections[alias].execute_wrapper(spy_for(alias)))
        yield


def _request(catalogue: Catalogue, lines: int, n: int) -> OrderRequest:
    skus = [catalogue.hot, *catalogue.strict, *catalogue.eventual]
    chosen = [skus[(n + i) % len(skus)].code for i in range(lines)]
    return OrderRequest(
        customer_id=f"costs-{uuid.uuid4().hex[:12]}",
        region="eu",
        currency="EUR",
        lines=[(sku, 1) for sku in dict.fromkeys(chosen)],
        payment_token="tok_ok",
        shipping_address={"country": "DE", "name": "Ada Lovelace", "city": "Berlin"},
    )


def statement_costs(*, catalogue: Catalogue, orders: int, lines: int = 2, warm_up: int = 20) -> CostReport:
    """Place ``orders`` orders of ``lines`` lines and drive each to rest, measuring every statement (after
    ``warm_up`` orders not measured: connections opened, statements prepared)."""
    seed_stock(catalogue)
    client_id = _costs_client()
    pids = _backend_pids()
    report = CostReport(orders=orders, server_measured=all(is_local_backend(pid) for pid in pids.values()))

    def place(n: int) -> uuid.UUID:
        request = _request(catalogue, lines, n)
        return order_place(
            client_id=client_id, idempotency_key=str(uuid.uuid4()), request=request, correlation_id=""
        ).order_id

    for n in range(warm_up):
        saga_run(order_id=place(n))
    part = PLACE
    with _timed(report, pids, lambda: part):
        for n in range(orders):
            part = PLACE
            order_id = place(n)
            part = SAGA
            report.outcomes[saga_run(order_id=order_id)] += 1
    return report
