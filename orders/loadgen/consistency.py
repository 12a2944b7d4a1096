"""At rest after a run, every module's books must agree, read through their public faces.

- a confirmed (shipped, delivered) order has exactly one capture, nothing
  refunded, its authorization captured, every reservation committed, a shipment;
- a rejected or cancelled order, and one on hold, holds nothing: no held or
  committed stock, no live authorization, every capture refunded, no shipment;
- every order's ledger balances against the money it moved;
- each SKU's stock adds up: on hand + sold = what was seeded, sold = committed
  units, reserved = held units, and STRICT stock is never below zero;
- fraud's customer history (fed by ``OrderConfirmed``, gathered into batches)
  counts every confirmed order once, with its total.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import connections
from django.db.models import Count, Sum

from fraud.api import get_confirmed_history
from inventory.api import get_stock_level, reservation_statuses
from orders.models import Order, OrderHistory, OrderState
from payments.api import get_ledger_balance, get_payment_summary
from shipping.api import get_shipment

S = OrderState
SETTLED = frozenset({S.CONFIRMED, S.SHIPPED, S.DELIVERED})
HOLDS_NOTHING = frozenset({S.REJECTED, S.CANCELLED, S.ON_HOLD})
LIVE_SHIPMENTS = frozenset({"created", "shipped", "delivered"})
CHUNK = 250
READERS = 4
SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class OrderBooks:
    order_id: str
    state: str
    lines: dict[str, int]
    reservations: dict[str, str]
    authorization: str | None
    captures: int
    captured_minor: int
    refunded_minor: int
    ledger: tuple[int, int]
    shipment: str | None


@dataclass
class ConsistencyReport:
    orders: int = 0
    by_state: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.problems


def read_books(order: Order) -> OrderBooks:
    payment = get_payment_summary(order_id=order.id)
    shipment = get_shipment(order_id=order.id)
    lines: Counter[str] = Counter()
    for line in order.lines.all():
        lines[line.sku] += line.quantity
    return OrderBooks(
        order_id=str(order.id),
        state=order.state,
        lines=dict(lines),
        reservations=reservation_statuses(order_id=order.id),
        authorization=payment.authorization_status,
        captures=payment.captures,
        captured_minor=payment.captured_minor,
        refunded_minor=payment.refunded_minor,
        ledger=get_ledger_balance(order_id=order.id),
        shipment=shipment.status if shipment else None,
    )


def order_problems(books: OrderBooks) -> list[str]:
    problems = []
    held = set(books.reservations.values())
    if books.state in SETTLED and not (
        books.captures == 1
        and books.refunded_minor == 0
        and books.authorization == "captured"
        and held == {"committed"}
        and books.shipment in LIVE_SHIPMENTS
    ):
        problems.append(f"{books.order_id} {books.state} but {books}")
    if books.state in HOLDS_NOTHING and not (
        held <= {"released", "returned"}
        and books.authorization not in ("authorized", "captured")
        and books.captured_minor == books.refunded_minor
        and books.shipment in (None, "cancelled")
    ):
        problems.append(f"{books.order_id} {books.state} but holds {books}")
    if books.captures > 1:
        problems.append(f"{books.order_id}: {books.captures} captures")
    debit, credit = books.ledger
    if not debit == credit == books.captured_minor + books.refunded_minor:
        problems.append(f"{books.order_id}: ledger D{debit} C{credit}, money moved {books}")
    return problems


def _read_chunk(orders: list[Order]) -> list[OrderBooks]:
    try:
        return [read_books(order) for order in orders]
    finally:
        connections.close_all()


def _chunks() -> Iterator[list[Order]]:
    chunk: list[Order] = []
    for order in Order.objects.order_by("created_at").prefetch_related("lines").iterator(chunk_size=CHUNK):
        chunk.append(order)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stock_problems(seeded: dict[str, int], committed: Counter[str], held: Counter[str]) -> list[str]:
    problems = []
    for sku, initial in seeded.items():
        level = get_stock_level(sku=sku)
        if level.on_hand + level.sold != initial:
            problems.append(f"{sku}: on hand {level.on_hand} + sold {level.sold} != seeded {initial}")
        if level.sold != committed[sku]:
            problems.append(f"{sku}: sold {level.sold} but committed reservations {committed[sku]}")
        expected_reserved = held[sku] if level.policy == "strict" else 0
        if level.reserved != expected_reserved:
            problems.append(f"{sku}: reserved {level.reserved} but held reservations {expected_reserved}")
        if level.policy == "strict" and (level.available < 0 or level.on_hand < 0):
            problems.append(f"{sku}: STRICT stock below zero (on hand {level.on_hand}, available {level.available})")
    return problems


def confirmed_totals() -> tuple[int, int]:
    """Orders that came to ``confirmed`` (whatever came after), and their totals (subtotal + tax) in minor units."""
    confirmed = Order.objects.filter(
        id__in=OrderHistory.objects.filter(to_state=S.CONFIRMED).values("order_id")
    ).aggregate(orders=Count("id"), subtotal=Sum("subtotal_minor"), tax=Sum("tax_minor"))
    return confirmed["orders"], (confirmed["subtotal"] or 0) + (confirmed["tax"] or 0)


def history_problems() -> list[str]:
    """Whether fraud's customer history counts each confirmed order once: none lost, none applied twice."""
    orders, amount = confirmed_totals()
    history = get_confirmed_history()
    if (history.orders, history.amount_minor) == (orders, amount):
        return []
    return [
        f"fraud's customer history counts {history.orders} confirmed orders ({history.amount_minor} minor units) "
        f"but {orders} were confirmed ({amount} minor units): an OrderConfirmed lost or applied twice"
    ]


def await_history(*, within_s: float, every_s: float = 0.5, log: Callable[[str], None] = print) -> float:
    """Wait until fraud's history has taken every confirmed order (its events are gathered and, while the saga is
    behind, held), at most ``within_s``; returns the seconds waited. What is still missing then is reported by
    ``check_consistency``."""
    started = time.monotonic()
    while history_problems() and time.monotonic() - started < within_s:
        time.sleep(every_s)
    waited = time.monotonic() - started
    if waited > every_s:
        log(f"fraud's customer history took {waited:.1f}s more to take every confirmed order")
    return waited


def check_consistency(*, seeded: dict[str, int]) -> ConsistencyReport:
    report = ConsistencyReport()
    committed: Counter[str] = Counter()
    held: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        for chunk in pool.map(_read_chunk, _chunks()):
            for books in chunk:
                report.orders += 1
                report.by_state[books.state] += 1
                report.problems += order_problems(books)
                for sku, status in books.reservations.items():
                    quantity = books.lines.get(sku, 0)
                    committed[sku] += quantity if status == "committed" else 0
                    held[sku] += quantity if status == "held" else 0
    report.problems += stock_problems(seeded, committed, held)
    debits, credits = get_ledger_balance()
    if debits != credits:
        report.problems.append(f"ledger: debits {debits} != credits {credits}")
    report.problems += history_problems()
    return report
