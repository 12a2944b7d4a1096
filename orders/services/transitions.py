"""The only way an order's state changes: a django-fsm transition, saved with
its history row and (optionally) an event, in one statement."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import connections
from django.utils import timezone
from django_fsm import ConcurrentTransition, can_proceed

from messaging.api import model_columns, outbox_message, update_where, update_where_then_insert
from orders.models import Order, OrderHistory, OrdersOutbox, OrderState
from orders.saga_lock import TRY_LOCK
from orders.selectors import saga_order_sql, saga_orders_of


class TransitionRefused(Exception):
    def __init__(self, order: Order, transition: str) -> None:
        super().__init__(f"order {order.id} in state {order.state!r} cannot {transition}")
        self.order = order
        self.transition = transition


def order_event(
    order: Order,
    *,
    message_type: str,
    correlation_id: str,
    reason: str = "",
    sequence: int | None = None,
    **extra: Any,
) -> OrdersOutbox:
    """An orders event about ``order`` as it is now (numbered with its version unless ``sequence`` says
    otherwise), for the outbox: not yet written."""
    return outbox_message(
        model=OrdersOutbox,
        message_type=message_type,
        aggregate_id=str(order.id),
        sequence=order.version if sequence is None else sequence,
        region=order.region,
        correlation_id=correlation_id or str(order.id),
        payload={
            "order_id": str(order.id),
            "customer_id": order.customer_id,
            "state": order.state,
            "reason": reason,
            "total_minor": order.total_minor,
            "currency": order.currency,
            **extra,
        },
    )


def order_transition(
    order: Order,
    *,
    transition: str | Sequence[str],
    reason: str = "",
    actor: str = "system",
    correlation_id: str = "",
    event: str | None = None,
    fields: dict[str, Any] | None = None,
) -> Order:
    """Apply one transition, or several in a row, to ``order`` and persist them
    with ``fields`` and their history in one transaction. Raises ConcurrentTransition when
    another worker moved the order first (re-read it and decide again)."""
    names = (transition,) if isinstance(transition, str) else tuple(transition)
    moves: list[tuple[str, str]] = []
    seen_state = order.state
    # Set first: a transition's conditions may look at them (the saga's last steps, recorded here).
    for field, value in (fields or {}).items():
        setattr(order, field, value)
    for name in names:
        method = getattr(order, name)
        if not can_proceed(method):
            raise TransitionRefused(order, name)
        from_state = order.state
        method()
        moves.append((from_state, order.state))
    rows: list[OrderHistory | OrdersOutbox] = [
        OrderHistory(
            order=order,
            from_state=from_state,
            to_state=to_state,
            reason=reason[:2000],
            actor=actor,
            correlation_id=correlation_id,
        )
        for from_state, to_state in moves
    ]
    if event:  # numbered with the version this transition saves
        rows.append(
            order_event(
                order, message_type=event, correlation_id=correlation_id, reason=reason, sequence=order.version + 1
            )
        )
    # One statement, atomic on its own: no BEGIN and COMMIT round trips.
    _save_unless_moved(order, seen_state=seen_state, changes=fields or {}, rows=rows)
    return order


def _save_unless_moved(
    order: Order, *, seen_state: str, changes: dict[str, Any], rows: Sequence[OrderHistory | OrdersOutbox] = ()
) -> None:
    """Save ``changes`` with the order's state, a new version and ``updated_at`` in one conditional UPDATE
    (with the history and outbox ``rows`` it records, in the same statement), refused when the order is no longer in
    ``seen_state`` at the version this copy holds (a cancel, another worker). What django-fsm's
    ConcurrentTransitionMixin.save does, plus the version, without Model.save's machinery (half of a
    transition's CPU in the worker), and without building the query anew each time."""
    now = timezone.now()
    where = {"id": order.pk, "state": seen_state, "version": order.version}
    values = {**changes, "state": order.state, "version": order.version + 1, "updated_at": now}
    saved = (
        update_where_then_insert(Order, where=where, values=values, rows=rows)
        if rows
        else update_where(Order, where=where, values=values)
    )
    if not saved:
        raise ConcurrentTransition(f"order {order.id} moved from {seen_state} (version {order.version}) meanwhile")
    for name, value in changes.items():
        setattr(order, name, value)
    order.version += 1
    order.updated_at = now
    order._update_initial_state()  # a later save() of this copy is checked against the state just saved


def order_record_step(order: Order, *, steps: Sequence[str], fields: dict[str, Any] | None = None) -> Order:
    """Remember that saga ``steps`` are done (and what they produced): one UPDATE,
    refused if the order moved meanwhile (a cancel, another worker)."""
    changes = {**(fields or {}), "completed_steps": [*order.completed_steps, *steps]}
    _save_unless_moved(order, seen_state=order.state, changes=changes)
    return order


@cache
def _start_reserving_sql() -> str:
    """Takes the saga's lock (``held``), and only if it got it moves the order (``moved``) and records the move
    (``recorded``). One row always: the order's columns and lines as ``saga_order_sql`` reads them (NULL when
    nothing moved), then whether the lock is held."""
    quote = connections[Order.objects.db].ops.quote_name
    meta, history = Order._meta, OrderHistory._meta
    column = {name: quote(meta.get_field(name).column) for name in ("id", "state", "version", "updated_at")}
    history_columns = ", ".join(
        quote(history.get_field(name).column)
        for name in ("order", "from_state", "to_state", "reason", "actor", "correlation_id", "created_at")
    )
    held = f"SELECT {TRY_LOCK.format(key='%(lock)s')} AS held"
    # The lock's subquery is a one-time filter, evaluated before the row is looked at; should the row be read
    # first all the same, an UPDATE acts on its latest version, and it acts only with the lock held.
    moved = (
        f"UPDATE {quote(meta.db_table)} SET {column['state']} = %(to)s, {column['version']} = {column['version']} + 1, "
        f"{column['updated_at']} = %(now)s WHERE {column['id']} = %(id)s AND {column['state']} = %(from)s "
        f"AND {quote(meta.get_field('deadline_at').column)} >= %(now)s AND (SELECT held FROM held) "
        f"RETURNING {model_columns(Order)}"
    )
    recorded = (
        f"INSERT INTO {quote(history.db_table)} ({history_columns}) "
        f"SELECT {column['id']}, %(from)s, %(to)s, %(reason)s, %(actor)s, %(correlation_id)s, %(now)s FROM moved"
    )
    return (
        f"WITH held AS ({held}), moved AS ({moved}), recorded AS ({recorded}) "
        f"SELECT s.*, held.held FROM held LEFT JOIN ({saga_order_sql('moved')}) s ON true"
    )


def order_start_reserving(*, order_id: uuid.UUID, correlation_id: str, lock_key: str) -> tuple[bool, Order | None]:
    """Take the saga's lock (``orders.saga_lock``, key ``lock_key``) and, with it held, move a pending order whose
    deadline has not passed to ``reserving`` and read it as a saga run does (``order_for_saga``), with its
    history row, in one statement. Returns whether the lock is held, and the order (``None`` when it is not
    pending: nothing changed). The transition ``order_transition(order, transition="start_reserving")`` would
    make, without the read before it: an UPDATE reads the row's latest version, so what it returns is never
    older than the last commit, whoever made it, and the lock's holder before this one commits before it lets
    go."""
    history = OrderHistory._meta
    params = {
        "lock": lock_key,
        "id": order_id,
        "from": OrderState.PENDING,
        "to": OrderState.RESERVING,
        "now": timezone.now(),
        "correlation_id": correlation_id,
        # The history row's defaults, which order_transition writes too when given no reason or actor.
        "reason": history.get_field("reason").default,
        "actor": history.get_field("actor").default,
    }
    (row,) = saga_orders_of(_start_reserving_sql(), params, extra=("lock_held",))
    return bool(row.lock_held), (row if row.pk is not None else None)
