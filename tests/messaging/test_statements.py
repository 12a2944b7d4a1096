"""The critical path's statements without the ORM give what the ORM gives: same rows, same values."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from inventory.models import StockItem
from messaging.api import (
    claim_then_insert,
    insert_rows,
    model_columns,
    outbox_message,
    rows_of,
    rows_where,
    update_where,
    update_where_then_insert,
)
from orders.models import IdempotencyRecord, Order, OrderHistory, OrderLine, OrdersOutbox
from tests.statements import statements_sent


def _order(**extra: object) -> Order:
    now = timezone.now()
    fields = {
        "client_id": uuid.uuid4(),
        "customer_id": "c-1",
        "region": "eu",
        "currency": "EUR",
        "subtotal_minor": 1_000,
        "payment_token": "tok_ok",
        "shipping_country": "DE",
        "shipping_address": {"country": "DE", "city": "Köln", "lines": ["a", 1]},
        "deadline_at": now + timedelta(minutes=1),
        "created_at": now,
        **extra,
    }
    return Order(**fields)


def _values(obj: object, model: type) -> dict[str, object]:
    return {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}


def test_rows_read_without_the_orm_equal_the_orm_s() -> None:
    order = Order.objects.create(**_values(_order(completed_steps=["clear_compliance"]), Order))
    OrderLine.objects.bulk_create([OrderLine(order=order, sku=f"S{n}", quantity=n, unit_price_minor=7) for n in (2, 1)])

    (mine,) = rows_where(Order, id=order.id)
    lines = rows_where(OrderLine, order_id=order.id, order_by=("sku",))

    assert _values(mine, Order) == _values(Order.objects.get(pk=order.id), Order)
    assert mine.shipping_address == {"country": "DE", "city": "Köln", "lines": ["a", 1]}  # JSON decoded
    assert [_values(line, OrderLine) for line in lines] == [
        _values(line, OrderLine) for line in OrderLine.objects.filter(order=order).order_by("sku")
    ]
    assert mine._state.adding is False and mine._state.db == "orders"
    assert rows_where(Order, id=uuid.uuid4()) == []


def test_inserted_rows_read_back_as_given_with_defaults_applied() -> None:
    order = _order()
    insert_rows([order])
    history = [
        OrderHistory(order=order, from_state="", to_state="pending", reason=f"r{n}", correlation_id="x")
        for n in range(3)
    ]
    insert_rows(history)

    stored = Order.objects.get(pk=order.id)
    assert _values(stored, Order) == _values(order, Order)
    assert stored.updated_at is not None  # auto_now applied, as save() would
    assert list(OrderHistory.objects.filter(order=order).values_list("reason", "actor")) == [
        ("r0", "system"),
        ("r1", "system"),
        ("r2", "system"),
    ]
    insert_rows([])  # nothing to write is not an error


def test_rows_of_several_models_go_in_one_statement_parents_first() -> None:
    order = _order()
    lines = [OrderLine(order=order, sku=f"S{n}", quantity=n, unit_price_minor=5) for n in (1, 2)]
    event = outbox_message(
        model=OrdersOutbox,
        message_type="orders.Test",
        aggregate_id=str(order.id),
        sequence=0,
        payload={"order_id": str(order.id)},
        correlation_id="c",
    )
    history = OrderHistory(order=order, from_state="", to_state="pending", reason="r", correlation_id="c")

    with statements_sent() as sent:
        insert_rows([order, *lines, history, event])

    assert len(sent) == 1
    assert _values(Order.objects.get(pk=order.id), Order) == _values(order, Order)
    assert list(OrderLine.objects.filter(order=order).order_by("sku").values_list("sku", "quantity")) == [
        ("S1", 1),
        ("S2", 2),
    ]
    assert OrderHistory.objects.get(order=order).to_state == "pending"
    assert OrdersOutbox.objects.get(pk=event.pk).payload == {"order_id": str(order.id)}
    assert all(obj._state.adding is False for obj in (order, *lines, history, event))


def test_one_statement_is_all_or_nothing_and_stays_on_one_alias() -> None:
    order = _order()
    insert_rows([order])
    again = _order(id=order.id)  # the same key: the whole statement fails, its other rows with it

    with statements_sent() as sent, pytest.raises(IntegrityError), transaction.atomic(using="orders"):
        insert_rows([OrderHistory(order=order, from_state="", to_state="x", correlation_id="c"), again])

    # Both rows went in one statement (between the savepoint's SAVEPOINT and ROLLBACK TO, RELEASE):
    # PostgreSQL keeps a statement whole or not at all, with or without a transaction around it.
    assert [sql.split()[0] for sql in sent] == ["SAVEPOINT", "WITH", "ROLLBACK", "RELEASE"]

    assert not OrderHistory.objects.filter(order=order).exists()
    with pytest.raises(ValueError, match="one database alias"):
        insert_rows([_order(), StockItem(sku="S", name="s", on_hand=1)])


def test_an_update_changes_only_the_rows_that_match_and_says_how_many() -> None:
    order = _order()
    insert_rows([order])
    later = timezone.now() + timedelta(seconds=5)

    stale = update_where(Order, where={"id": order.id, "version": 7}, values={"version": 8})
    moved = update_where(
        Order,
        where={"id": order.id, "state": "pending", "version": 0},
        values={
            "version": 1,
            "completed_steps": ["clear_compliance", "assess_fraud"],
            "updated_at": later,
            "tax_minor": 19,
        },
    )

    assert (stale, moved) == (0, 1)
    stored = Order.objects.get(pk=order.id)
    assert (stored.version, stored.completed_steps, stored.updated_at, stored.tax_minor) == (
        1,
        ["clear_compliance", "assess_fraud"],
        later,
        19,
    )


def test_a_row_can_be_locked_and_null_is_refused_as_a_filter() -> None:
    order = _order()
    insert_rows([order])
    with statements_sent() as sent:
        (locked,) = rows_where(Order, id=order.id, for_update=True)
    assert locked.id == order.id
    assert sent[0].endswith(" FOR UPDATE")

    with pytest.raises(ValueError, match="__isnull"):
        rows_where(Order, id=None)


def test_a_collection_filter_matches_any_of_its_values_in_one_statement_shape() -> None:
    orders = [_order(customer_id=f"c-{n}") for n in range(3)]
    insert_rows(orders)
    OrderLine.objects.bulk_create(
        [OrderLine(order=o, sku=f"S{n}", quantity=1, unit_price_minor=7) for n, o in enumerate(orders)]
    )
    with statements_sent() as sent:
        two = rows_where(Order, id__in=[orders[0].id, orders[2].id], order_by=("customer_id",))
        one = rows_where(OrderLine, sku__in=("S1",))
        none = rows_where(OrderLine, sku__in=[])
        changed = update_where(OrderLine, where={"sku__in": ["S0", "S2", "S9"]}, values={"quantity": 5})

    assert [o.customer_id for o in two] == ["c-0", "c-2"]
    assert [line.order_id for line in one] == [orders[1].id]
    assert none == []
    assert changed == 2
    assert dict(OrderLine.objects.values_list("sku", "quantity")) == {"S0": 5, "S1": 1, "S2": 5}
    assert sent[1] == sent[2]  # one statement whatever the number of values
    assert all("ANY(%s)" in sql for sql in sent)
    with pytest.raises(ValueError, match="collection"):
        rows_where(OrderLine, sku__in="S1")
    assert [line.sku for line in rows_where(OrderLine, sku__in=(sku for sku in ["S1"]))] == ["S1"]  # read once


def test_rows_of_a_statement_of_one_s_own_read_as_the_orm_s_with_extra_columns() -> None:
    order = Order.objects.create(**_values(_order(completed_steps=["clear_compliance"]), Order))
    sql = f'SELECT {model_columns(Order)}, 41 + 1, ARRAY[%s] FROM "orders_order" WHERE "id" = %s'

    (mine,) = rows_of(Order, sql, ["x", order.id], extra=("answer", "tags"))

    assert _values(mine, Order) == _values(Order.objects.get(pk=order.id), Order)
    assert (mine.answer, mine.tags) == (42, ["x"])  # type: ignore[attr-defined]
    assert mine._state.adding is False and mine._state.db == "orders"
    assert rows_of(Order, sql, ["x", uuid.uuid4()]) == []


def test_rows_are_inserted_with_an_update_only_when_it_changed_a_row_in_one_statement() -> None:
    order = _order()
    insert_rows([order])

    def history(reason: str) -> list[OrderHistory]:
        return [
            OrderHistory(order=order, from_state="pending", to_state="reserving", reason=reason, correlation_id="c"),
            OrderHistory(order=order, from_state="reserving", to_state="reserved", reason=reason, correlation_id="c"),
        ]

    with statements_sent() as sent:
        moved = update_where_then_insert(
            Order,
            where={"id": order.id, "state": "pending", "version": 0},
            values={"state": "reserved", "version": 1, "completed_steps": ["clear_compliance"]},
            rows=history("first"),
        )
        stale = update_where_then_insert(
            Order,
            where={"id": order.id, "state": "pending", "version": 0},
            values={"state": "reserved", "version": 1},
            rows=history("second"),
        )

    assert (moved, stale) == (True, False)
    stored = Order.objects.get(pk=order.id)
    assert (stored.state, stored.version, stored.completed_steps) == ("reserved", 1, ["clear_compliance"])
    assert list(OrderHistory.objects.filter(order=order).order_by("id").values_list("to_state", "reason", "actor")) == [
        ("reserving", "first", "system"),
        ("reserved", "first", "system"),
    ]
    assert len(sent) == 2  # one statement each, no transaction around them
    with pytest.raises(ValueError, match="required"):
        update_where_then_insert(Order, where={"id": order.id}, values={"version": 2}, rows=[])


def test_rows_of_several_models_follow_the_update_or_none_of_them_do() -> None:
    order = _order()
    insert_rows([order])

    def rows(reason: str) -> list[OrderHistory | OrdersOutbox]:
        return [
            OrderHistory(order=order, from_state="pending", to_state="reserving", reason=reason, correlation_id="c"),
            outbox_message(
                model=OrdersOutbox,
                message_type="orders.Test",
                aggregate_id=str(order.id),
                sequence=1,
                payload={"reason": reason},
                correlation_id="c",
            ),
        ]

    with statements_sent() as sent:
        moved = update_where_then_insert(
            Order, where={"id": order.id, "version": 0}, values={"version": 1}, rows=rows("first")
        )
        stale = update_where_then_insert(
            Order, where={"id": order.id, "version": 0}, values={"version": 1}, rows=rows("second")
        )

    assert (moved, stale, len(sent)) == (True, False, 2)
    assert list(OrderHistory.objects.filter(order=order).values_list("reason", flat=True)) == ["first"]
    assert [m.payload for m in OrdersOutbox.objects.filter(aggregate_id=str(order.id))] == [{"reason": "first"}]


def test_a_value_too_long_is_refused_not_cut_short() -> None:
    order = _order()
    insert_rows([order])
    long_actor = "a" * 151  # the column is varchar(150)

    with pytest.raises(DataError), transaction.atomic(using="orders"):
        update_where_then_insert(
            Order,
            where={"id": order.id, "version": 0},
            values={"version": 1},
            rows=[OrderHistory(order=order, from_state="", to_state="x", actor=long_actor, correlation_id="c")],
        )
    with pytest.raises(DataError), transaction.atomic(using="orders"):
        insert_rows([OrderHistory(order=order, from_state="", to_state="x", actor=long_actor, correlation_id="c")])

    assert Order.objects.get(pk=order.id).version == 0
    assert not OrderHistory.objects.filter(order=order).exists()


def test_rows_follow_a_claim_only_when_its_key_was_new_in_one_statement() -> None:
    client_id = uuid.uuid4()

    def attempt(reason: str) -> tuple[bool, Order]:
        order = _order(client_id=client_id)
        claim = IdempotencyRecord(
            client_id=client_id, key="k", request_sha256="x", order=order, response_status=202, response_body={}
        )
        history = OrderHistory(order=order, from_state="", to_state="pending", reason=reason, correlation_id="c")
        return claim_then_insert(claim, [order, history]), order

    with statements_sent() as sent:
        (first, first_order), (second, second_order) = attempt("first"), attempt("second")

    assert (first, second, len(sent)) == (True, False, 2)
    assert list(Order.objects.filter(client_id=client_id).values_list("id", flat=True)) == [first_order.id]
    assert list(OrderHistory.objects.values_list("reason", flat=True)) == ["first"]
    assert IdempotencyRecord.objects.get(client_id=client_id, key="k").order_id == first_order.id
    assert second_order._state.adding  # not written
    with pytest.raises(ValueError, match="required"):
        claim_then_insert(first_order, [])
