"""The order saga orchestrator (DESIGN.md §3).

One run drives an order as far as it can go now:

    reservation:  clear_compliance → assess_fraud → reserve_stock → authorize_payment
    confirmation: commit_stock → capture_payment → create_shipment → confirmed
    compensation: undo completed steps in reverse order → rejected / cancelled

Each step calls a participant's ``api.py`` (its own transaction on its own
alias) and is idempotent by (order, step); a phase's steps are recorded on the
order by the transition that ends the phase (at once when a step pauses the
saga or holds it for review), so a run that dies anywhere resumes where it
stopped, repeating at most the steps of one phase, each of which answers from
its own record.
A ``BusinessError`` compensates; a ``TransientError`` propagates so that the
consumer retries the run with backoff (the saga pauses, it does not reject),
until the order's deadline passes and it compensates instead.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django_fsm import ConcurrentTransition

from compliance.api import clear_order
from fraud.api import assess_order
from fraud.contracts import Decision, FraudRejected
from inventory.api import commit_stock, release_stock, reserve_stock, return_stock
from inventory.contracts import LineRequest
from messaging.api import BusinessError, TransientError, bound, crash_point, insert_rows, span
from orders.contracts import (
    COMPENSATE_ORDER,
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    ORDER_NEEDS_ATTENTION,
    ORDER_REJECTED,
)
from orders.metrics import SAGA_OUTCOMES, SAGA_STEP_SECONDS
from orders.models import CONFIRMATION_STEPS, RESERVATION_STEPS, RESTING_STATES, Order, OrderState
from orders.saga_lock import lock_only, saga_lock_taken_by
from orders.selectors import order_for_saga, order_moved
from orders.services.transitions import order_event, order_record_step, order_start_reserving, order_transition
from payments.api import authorize_payment, capture_payment, refund_payment, void_payment
from shipping.api import cancel_shipment, create_shipment

log = logging.getLogger("orders.saga")
SLOW_STEP_S = 0.5
S = OrderState


class HeldForReview(Exception):
    """Fraud wants a person to look: the saga rests in ``on_hold``."""


class SagaBusy(TransientError):
    """Another worker is driving this order right now."""


@dataclass(frozen=True)
class Step:
    """``run(order, first_run)``: ``first_run`` when this run moved the order out of ``pending``, so no step
    ran for it before and a participant need not look for its record of an earlier call.
    ``third_party``: the step calls a gateway or carrier; it runs only after a look at the order shows
    nobody moved it (a cancel) since the phase began, so a cancelled order gets no new authorization,
    capture or label, only the compensation of what it already had."""

    name: str
    run: Callable[[Order, bool], dict]
    undo: Callable[[Order], None] | None = None
    third_party: bool = False


def _clear(order: Order, _first_run: bool) -> dict:
    """The destination's screening and the tax, in one call: the tax depends only on the region and the
    subtotal, both fixed when the order was placed, so it need not wait for the stock."""
    quote = clear_order(
        order_id=order.id,
        region=order.region,
        shipping_country=order.shipping_country,
        taxable_minor=order.subtotal_minor,
        currency=order.currency,
    )
    return {"tax_minor": quote.tax_minor}


def _assess_fraud(order: Order, _first_run: bool) -> dict:
    risk = assess_order(
        order_id=order.id,
        customer_id=order.customer_id,
        amount_minor=order.subtotal_minor,
        currency=order.currency,
        region=order.region,
        shipping_country=order.shipping_country,
    )
    if risk.decision == Decision.REJECT:
        raise FraudRejected(risk.reasons)
    if risk.decision == Decision.REVIEW:
        raise HeldForReview(", ".join(risk.reasons))
    return {}


def _reserve(order: Order, _first_run: bool) -> dict:
    lines = [LineRequest(sku=sku, quantity=quantity) for sku, quantity in order.line_pairs]  # read by _driving
    reserve_stock(order_id=order.id, lines=lines, ttl=timedelta(seconds=settings.RESERVATION_TTL_S))
    return {}


def _authorize(order: Order, first_run: bool) -> dict:
    authorize_payment(
        order_id=order.id,
        amount_minor=order.total_minor,
        currency=order.currency,
        token=order.payment_token,
        first_call=first_run,
    )
    return {}


def _commit(order: Order, _first_run: bool) -> dict:
    commit_stock(order_id=order.id)
    return {}


def _capture(order: Order, _first_run: bool) -> dict:
    capture_payment(order_id=order.id)
    return {}


def _ship(order: Order, first_run: bool) -> dict:
    create_shipment(order_id=order.id, region=order.region, country=order.shipping_country, first_call=first_run)
    return {}


RESERVATION = (
    Step("clear_compliance", _clear),
    Step("assess_fraud", _assess_fraud),
    Step("reserve_stock", _reserve, undo=lambda o: release_stock(order_id=o.id)),
    Step("authorize_payment", _authorize, undo=lambda o: void_payment(order_id=o.id), third_party=True),
)
CONFIRMATION = (
    Step("commit_stock", _commit, undo=lambda o: return_stock(order_id=o.id)),
    Step("capture_payment", _capture, undo=lambda o: refund_payment(order_id=o.id), third_party=True),
    Step("create_shipment", _ship, undo=lambda o: cancel_shipment(order_id=o.id), third_party=True),
)
STEPS = {step.name: step for step in (*RESERVATION, *CONFIRMATION)}
if tuple(s.name for s in RESERVATION) != RESERVATION_STEPS or tuple(s.name for s in CONFIRMATION) != CONFIRMATION_STEPS:
    raise ImproperlyConfigured("the saga's steps and the order's transition conditions disagree")
# Undo every step that may have had an effect, even one whose completion was
# never recorded (the worker may have died between the effect and the record).
UNDO_ORDER = tuple(reversed([*RESERVATION, *CONFIRMATION]))


@contextmanager
def _driving(order_id: uuid.UUID, *, start_as: str | None = None) -> Iterator[tuple[Order, bool]]:
    """One driver per order across all workers (``saga_lock``). Yields the order with its lines, read after
    the lock is held: read in the same statement, it could come from a snapshot taken before the previous
    driver's last commit and unlock. With ``start_as`` (a correlation id), the lock is taken by a statement that
    also moves a pending order to ``reserving`` and reads it (``order_start_reserving``), as an UPDATE reads the
    latest version: a saga's first run, two statements less. Yields the order, and whether this is its first
    run (the statement moved it out of ``pending``)."""
    if start_as is None:
        locking = saga_lock_taken_by(order_id, lock_only)
    else:
        locking = saga_lock_taken_by(
            order_id, lambda key: order_start_reserving(order_id=order_id, correlation_id=start_as, lock_key=key)
        )
    with locking as (acquired, started):
        if not acquired:
            raise SagaBusy(f"order {order_id} is being driven by another worker")
        order = started if started is not None else order_for_saga(order_id=order_id)
        if order is None:
            raise Order.DoesNotExist(f"order {order_id} does not exist")
        yield order, started is not None


def _run_steps(order: Order, steps: tuple[Step, ...], *, first_run: bool) -> tuple[Order, dict]:
    """Run the phase's steps not done yet. Returns the order and the fields that record them, for the
    transition that ends the phase to save: one write per phase instead of one per step.

    Every participant is idempotent by order and reads its own record before it calls a third party, so
    a run that stops between a step's effect and the phase's transition repeats the step harmlessly (no
    second gateway or carrier call), and compensation undoes every step that may have had an effect,
    recorded or not. What the record is still for, the order's readers: a pause (a participant
    unavailable), a hold (fraud review) or a business failure records at once the steps done before it,
    so a paused order shows its stock reserved and a compensated one what was undone."""
    done: list[str] = []  # run, not yet recorded
    produced: dict = {}
    for step in steps:
        if step.name in order.completed_steps:
            continue
        started = time.perf_counter()
        with bound(saga_step=step.name), span(f"saga {step.name}", order_id=str(order.id)):
            if step.third_party and order_moved(order):
                raise ConcurrentTransition(f"order {order.id} moved before {step.name}")
            try:
                fields = step.run(order, first_run)
            except (HeldForReview, TransientError, BusinessError):
                if done:  # the order shows what is done, for a person and for the compensation
                    order = order_record_step(order, steps=done, fields=produced)
                raise
            crash_point(f"saga.after_step:{step.name}")
            done.append(step.name)
            produced.update(fields)
            for name, value in fields.items():
                setattr(order, name, value)  # later steps see what this one produced
            elapsed = time.perf_counter() - started
            SAGA_STEP_SECONDS.labels(step=step.name).observe(elapsed)
            # Every step's time is in the saga_step_seconds histogram; the log names only slow ones, so
            # that an order costs the worker two log lines, not ten (JSON logging was 6 % of its CPU).
            log.log(
                logging.INFO if elapsed >= SLOW_STEP_S else logging.DEBUG,
                "saga step %s done in %.1f ms",
                step.name,
                elapsed * 1000,
            )
    if not done:
        return order, {}
    return order, {**produced, "completed_steps": [*order.completed_steps, *done]}


def _finished(order: Order, *, started_in: str) -> str:
    """Count and log an outcome the first time the order comes to rest."""
    if order.state != started_in and order.state in RESTING_STATES:
        reason = order.failure_reason.split(":", 1)[0] if order.failure_reason else ""
        SAGA_OUTCOMES.labels(outcome=order.state, reason=reason[:40]).inc()
        log.info("saga rests in %s", order.state, extra={"reason": order.failure_reason})
    return order.state


def _request_compensation(order: Order, *, correlation_id: str, cause: str) -> None:
    """Hand the compensation to its own queue, where it is retried with backoff."""
    insert_rows([order_event(order, message_type=COMPENSATE_ORDER, correlation_id=correlation_id, reason=cause)])


def _escalate(order: Order, *, reason: str, correlation_id: str) -> Order:
    return order_transition(
        order, transition="escalate", reason=reason, correlation_id=correlation_id, event=ORDER_NEEDS_ATTENTION
    )


def _undo_all(order: Order) -> None:
    for step in UNDO_ORDER:
        if step.undo is not None:
            step.undo(order)
            crash_point(f"saga.after_undo:{step.name}")


def _compensate(order: Order, *, correlation_id: str, retrying: bool = False) -> Order:
    """Undo everything and end rejected or cancelled.

    An unavailable participant defers the work to the compensation queue (or,
    when that is where we run, lets the consumer retry); an undo that a
    participant refuses puts the order in front of a person.
    """
    try:
        _undo_all(order)
    except TransientError as exc:
        if retrying:
            raise
        log.warning("order %s: compensation deferred (%s)", order.id, exc)
        _request_compensation(order, correlation_id=correlation_id, cause=str(exc))
        return order
    except BusinessError as refusal:
        return _escalate(
            order, reason=f"compensation refused: {refusal.code}: {refusal.detail}", correlation_id=correlation_id
        )
    cancelled = order.failure_reason.startswith("cancelled")
    return order_transition(
        order,
        transition="mark_cancelled" if cancelled else "reject",
        reason=order.failure_reason,
        correlation_id=correlation_id,
        event=ORDER_CANCELLED if cancelled else ORDER_REJECTED,
    )


def _start_compensating(order: Order, *, reason: str, correlation_id: str) -> Order:
    return order_transition(
        order,
        transition="start_compensating",
        reason=reason,
        correlation_id=correlation_id,
        fields={"failure_reason": reason},
    )


def saga_compensate(*, order_id: uuid.UUID, correlation_id: str = "") -> str:
    """Finish an order's compensation (from the compensation queue)."""
    with (
        bound(order_id=str(order_id), correlation_id=correlation_id or str(order_id)),
        _driving(order_id) as (order, _),
    ):
        if order.state != S.COMPENSATING:
            return order.state
        done = _compensate(order, correlation_id=correlation_id or str(order.id), retrying=True)
        return _finished(done, started_in=S.COMPENSATING)


def saga_escalate(*, order_id: uuid.UUID, reason: str, correlation_id: str = "") -> str:
    """Compensation gave up: a person must look at the order."""
    with _driving(order_id) as (order, _):
        if order.state != S.COMPENSATING:
            return order.state
        return _escalate(order, reason=reason, correlation_id=correlation_id or str(order.id)).state


def saga_run(*, order_id: uuid.UUID, correlation_id: str = "") -> str:
    """Drive the order as far as it can go; return the state it rests in."""
    correlation_id = correlation_id or str(order_id)
    with (
        bound(order_id=str(order_id), correlation_id=correlation_id),
        _driving(order_id, start_as=correlation_id) as (order, first_run),
    ):
        started_in = order.state
        if order.state in RESTING_STATES:
            return order.state
        return _finished(_drive(order, correlation_id, first_run=first_run), started_in=started_in)


def _drive(order: Order, correlation_id: str, *, first_run: bool) -> Order:
    if order.state != S.COMPENSATING and timezone.now() > order.deadline_at:
        order = _start_compensating(
            order, reason="deadline passed before the order completed", correlation_id=correlation_id
        )
    try:
        if order.state == S.PENDING:
            order = order_transition(order, transition="start_reserving", correlation_id=correlation_id)
        if order.state == S.RESERVING:
            order, record = _run_steps(order, RESERVATION, first_run=first_run)
            order = order_transition(
                order, transition=("mark_reserved", "start_confirming"), correlation_id=correlation_id, fields=record
            )
        if order.state == S.RESERVED:
            order = order_transition(order, transition="start_confirming", correlation_id=correlation_id)
        if order.state == S.CONFIRMING:
            order, record = _run_steps(order, CONFIRMATION, first_run=first_run)
            order = order_transition(
                order, transition="confirm", correlation_id=correlation_id, event=ORDER_CONFIRMED, fields=record
            )
    except HeldForReview as held:
        return order_transition(
            order, transition="hold_for_review", reason=f"fraud review: {held}", correlation_id=correlation_id
        )
    except BusinessError as failure:
        log.info("order %s: %s; compensating", order.id, failure.detail)
        current = Order.objects.get(pk=order.id)
        # Someone (a cancel, a lapsed hold) may have started compensating meanwhile.
        order = (
            current
            if current.state == S.COMPENSATING
            else _start_compensating(current, reason=f"{failure.code}: {failure.detail}", correlation_id=correlation_id)
        )
    if order.state == S.COMPENSATING:
        order = _compensate(order, correlation_id=correlation_id)
    return order
