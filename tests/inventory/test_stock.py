"""STRICT never oversells; EVENTUAL never touches the stock row on the order
path and books its sales in bulk, back-ordering a shortfall."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connections, transaction
from django.db.models import F

from inventory.api import get_stock_level, set_stock
from inventory.contracts import LineRequest, OutOfStock, ReservationLapsed, UnknownSku
from inventory.models import Reservation, StockItem
from inventory.services import (
    eventual_sales_settle,
    reservation_commit,
    reservation_hold,
    reservation_release,
    reservation_return,
)
from tests.statements import statements_sent

TTL = timedelta(minutes=30)


def hold(sku: str, qty: int, order_id: uuid.UUID | None = None) -> uuid.UUID:
    order_id = order_id or uuid.uuid4()
    reservation_hold(order_id=order_id, lines=[LineRequest(sku=sku, quantity=qty)], ttl=TTL)
    return order_id


def level(sku: str) -> tuple[int, int, int, int, int]:
    s = get_stock_level(sku=sku)
    return s.on_hand, s.reserved, s.available, s.sold, s.backordered


def test_strict_hold_commit_release_and_return() -> None:
    set_stock(sku="S", on_hand=10, policy="strict")
    kept, dropped = hold("S", 3), hold("S", 4)
    assert level("S") == (10, 7, 3, 0, 0)

    reservation_commit(order_id=kept)
    reservation_release(order_id=dropped)
    assert level("S") == (7, 0, 7, 3, 0)

    reservation_return(order_id=kept)
    assert level("S") == (10, 0, 10, 0, 0)


def test_strict_refuses_the_unit_that_is_not_there_and_holds_nothing_of_the_order() -> None:
    set_stock(sku="A", on_hand=5, policy="strict")
    set_stock(sku="B", on_hand=1, policy="strict")
    order_id = uuid.uuid4()

    with pytest.raises(OutOfStock):
        reservation_hold(
            order_id=order_id, lines=[LineRequest(sku="A", quantity=2), LineRequest(sku="B", quantity=2)], ttl=TTL
        )

    assert level("A") == (5, 0, 5, 0, 0)
    assert not Reservation.objects.filter(order_id=order_id).exists()


def test_a_hold_of_several_lines_is_one_statement_and_leaves_eventual_rows_alone() -> None:
    set_stock(sku="A", on_hand=5, policy="strict")
    set_stock(sku="B", on_hand=5, policy="strict")
    set_stock(sku="E", on_hand=5, policy="eventual")
    order_id = uuid.uuid4()
    lines = [LineRequest(sku=sku, quantity=2) for sku in ("B", "E", "A")] + [LineRequest(sku="A", quantity=1)]

    with statements_sent("inventory") as sent:
        held = reservation_hold(order_id=order_id, lines=lines, ttl=TTL)

    assert len(sent) == 1  # no BEGIN, read, UPDATE per line, INSERT, COMMIT: the row locks last one statement
    assert sorted((r.sku, r.quantity, r.policy, r.status) for r in held) == [
        ("A", 3, "strict", "held"),
        ("B", 2, "strict", "held"),
        ("E", 2, "eventual", "held"),
    ]
    assert {r.pk for r in held} == set(Reservation.objects.filter(order_id=order_id).values_list("pk", flat=True))
    assert (level("A"), level("B")) == ((5, 3, 2, 0, 0), (5, 2, 3, 0, 0))
    assert StockItem.objects.get(sku="E").reserved == 0


def test_a_refused_hold_names_the_first_sku_in_order_that_fails_and_holds_nothing() -> None:
    set_stock(sku="B", on_hand=1, policy="strict")
    set_stock(sku="D", on_hand=9, policy="strict")
    order_id = uuid.uuid4()

    def hold_lines(*lines: tuple[str, int]) -> None:
        reservation_hold(order_id=order_id, lines=[LineRequest(sku=sku, quantity=q) for sku, q in lines], ttl=TTL)

    with pytest.raises(OutOfStock, match="not enough stock of 'B' for 2"):
        hold_lines(("D", 1), ("B", 2))
    with pytest.raises(UnknownSku, match="C"):
        hold_lines(("D", 1), ("C", 1), ("B", 1))
    with pytest.raises(OutOfStock, match="'B' for 5"):
        hold_lines(("D", 1), ("C", 1), ("B", 5))  # B comes before C

    assert (level("B"), level("D")) == ((1, 0, 1, 0, 0), (9, 0, 9, 0, 0))
    assert not Reservation.objects.filter(order_id=order_id).exists()


def _hold_behind(change: Callable[[], None], sku: str, quantity: int) -> tuple[bool, str]:
    """Hold ``quantity`` of ``sku`` while another transaction has run ``change`` on its row and not yet
    committed; whether the hold waited for that commit, and how it ended ("held" or the error's name)."""
    changed, may_commit = threading.Event(), threading.Event()
    outcome: list[str] = []

    def other() -> None:
        try:
            with transaction.atomic(using="inventory"):
                change()
                changed.set()
                may_commit.wait(10)
        finally:
            connections.close_all()

    def holder() -> None:
        try:
            hold(sku, quantity)
            outcome.append("held")
        except Exception as exc:  # the test names what went wrong
            outcome.append(type(exc).__name__)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=other), threading.Thread(target=holder)]
    threads[0].start()
    assert changed.wait(10)
    threads[1].start()
    time.sleep(0.3)
    waited = threads[1].is_alive()  # on the row's lock, its statement begun before that commit
    may_commit.set()
    for thread in threads:
        thread.join(10)
    return waited, "".join(outcome)


@pytest.mark.django_db(transaction=True, databases=["inventory"])
def test_a_hold_that_waited_on_another_order_s_lock_decides_on_what_that_order_left() -> None:
    set_stock(sku="S", on_hand=3, policy="strict")

    waited, outcome = _hold_behind(lambda: hold("S", 2), "S", 2)

    assert waited
    assert outcome == "OutOfStock"  # 1 unit was left, not the 3 its statement's snapshot saw
    assert level("S") == (3, 2, 1, 0, 0)


@pytest.mark.django_db(transaction=True, databases=["inventory"])
def test_a_hold_that_waited_while_stock_was_added_takes_the_new_units() -> None:
    set_stock(sku="S", on_hand=5, policy="strict")

    # A release, an expiry or a delivery does the same to the row.
    waited, outcome = _hold_behind(lambda: StockItem.objects.filter(sku="S").update(on_hand=F("on_hand") + 1), "S", 6)

    assert waited
    assert outcome == "held"  # not IntegrityError: a new row built from the snapshot's 5
    assert level("S") == (6, 6, 0, 0, 0)


def test_a_sale_of_several_lines_is_one_statement_and_happens_once() -> None:
    set_stock(sku="A", on_hand=5, policy="strict")
    set_stock(sku="B", on_hand=5, policy="strict")
    set_stock(sku="E", on_hand=5, policy="eventual")
    order_id = uuid.uuid4()
    lines = [LineRequest(sku=sku, quantity=2) for sku in ("B", "E", "A")]
    reservation_hold(order_id=order_id, lines=lines, ttl=TTL)

    with statements_sent("inventory") as sent:
        committed = reservation_commit(order_id=order_id)

    assert (committed, len(sent)) == (3, 1)
    assert (level("A"), level("B")) == ((3, 0, 3, 2, 0), (3, 0, 3, 2, 0))
    assert StockItem.objects.get(sku="E").on_hand == 5  # EVENTUAL: booked later, in bulk
    assert set(Reservation.objects.filter(order_id=order_id).values_list("status", flat=True)) == {"committed"}
    assert reservation_commit(order_id=order_id) == 0  # a repeated step sells nothing more
    assert level("A") == (3, 0, 3, 2, 0)


def test_a_sale_with_a_lapsed_line_sells_none_of_the_order() -> None:
    set_stock(sku="A", on_hand=5, policy="strict")
    set_stock(sku="B", on_hand=5, policy="strict")
    order_id = uuid.uuid4()
    reservation_hold(
        order_id=order_id, lines=[LineRequest(sku="A", quantity=1), LineRequest(sku="B", quantity=1)], ttl=TTL
    )
    Reservation.objects.filter(order_id=order_id, sku="B").update(status="released")
    StockItem.objects.filter(sku="B").update(reserved=0)

    with pytest.raises(ReservationLapsed, match="B"):
        reservation_commit(order_id=order_id)
    with pytest.raises(ReservationLapsed, match="no reservation"):
        reservation_commit(order_id=uuid.uuid4())

    assert (level("A"), level("B")) == ((5, 1, 4, 0, 0), (5, 0, 5, 0, 0))
    assert Reservation.objects.get(order_id=order_id, sku="A").status == "held"


def test_the_database_refuses_an_oversold_strict_row() -> None:
    set_stock(sku="S", on_hand=1, policy="strict")
    with pytest.raises(IntegrityError), transaction.atomic(using="inventory"):
        StockItem.objects.filter(sku="S").update(reserved=2)


def test_holding_twice_for_one_order_holds_once() -> None:
    set_stock(sku="S", on_hand=10, policy="strict")
    order_id = hold("S", 2)
    hold("S", 2, order_id)
    assert level("S") == (10, 2, 8, 0, 0)


def test_a_hold_names_the_sku_that_does_not_exist_and_holds_nothing() -> None:
    set_stock(sku="A", on_hand=5, policy="strict")
    order_id = uuid.uuid4()

    with pytest.raises(UnknownSku, match="NOPE"):
        reservation_hold(
            order_id=order_id, lines=[LineRequest(sku="A", quantity=1), LineRequest(sku="NOPE", quantity=1)], ttl=TTL
        )
    with pytest.raises(UnknownSku, match="NOPE"):
        reservation_hold(order_id=order_id, lines=[LineRequest(sku="NOPE", quantity=1)], ttl=TTL)

    assert level("A") == (5, 0, 5, 0, 0)
    assert not Reservation.objects.filter(order_id=order_id).exists()


def test_a_repeated_hold_answers_with_the_first_one_s_reservations() -> None:
    set_stock(sku="A", on_hand=5, policy="strict")
    set_stock(sku="E", on_hand=5, policy="eventual")
    order_id = uuid.uuid4()
    lines = [LineRequest(sku="E", quantity=1), LineRequest(sku="A", quantity=2)]
    first = reservation_hold(order_id=order_id, lines=lines, ttl=TTL)

    again = reservation_hold(order_id=order_id, lines=lines, ttl=TTL)

    assert sorted((r.sku, r.quantity, r.policy) for r in again) == [("A", 2, "strict"), ("E", 1, "eventual")]
    assert {r.pk for r in again} == {r.pk for r in first}
    assert level("A") == (5, 2, 3, 0, 0)


def test_eventual_items_are_sold_without_touching_the_row_then_settled_in_bulk() -> None:
    set_stock(sku="E", on_hand=3, policy="eventual")
    orders = [hold("E", 2) for _ in range(3)]  # 6 wanted, 3 on hand: accepted anyway
    for order_id in orders:
        reservation_commit(order_id=order_id)
    row = StockItem.objects.get(sku="E")
    assert (row.on_hand, row.reserved, row.sold) == (3, 0, 0)  # untouched on the order path
    assert level("E") == (-3, 0, -3, 6, 3)  # the view counts them sold and back-ordered

    assert eventual_sales_settle() == {"E": 6}
    row.refresh_from_db()
    assert (row.on_hand, row.sold) == (-3, 6)
    assert level("E") == (-3, 0, -3, 6, 3)
    assert eventual_sales_settle() == {}

    reservation_return(order_id=orders[0])  # a settled sale goes back on the row
    assert level("E") == (-1, 0, -1, 4, 1)


def test_stock_command_sets_and_shows() -> None:
    out = StringIO()
    call_command("stock", "set", "CMD-1", "--on-hand", "7", "--policy", "eventual", "--price", "EUR=1999", stdout=out)
    call_command("stock", "show", "CMD-1", stdout=out)
    assert out.getvalue().splitlines()[-1] == "CMD-1 (eventual): on hand 7, reserved 0, available 7, sold 0"
    assert StockItem.objects.get(sku="CMD-1").prices == {"EUR": 1999}
    with pytest.raises(CommandError, match="unknown SKU"):
        call_command("stock", "show", "NOPE")
    with pytest.raises(CommandError, match="0 or more"):
        call_command("stock", "set", "CMD-1", "--on-hand", "-1")
