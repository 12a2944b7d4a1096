"""One check per kind of discrepancy. An order check reads one order's facts;
the others read stock counters, outboxes and dead letters. Checks only read."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from inventory.contracts import ReservationRecord, StockTally
from messaging.contracts import DeadLetterSummary
from orders.models import OrderState
from orders.reconciliation.findings import SECONDS, UNITS, Finding, OrderFacts, money
from orders.reconciliation.models import DiscrepancyKind
from orders.reconciliation.sources import StalledMessage
from orders.services.recovery import MOVING_STATES

K = DiscrepancyKind
S = OrderState
FULFILLED = frozenset({S.CONFIRMED, S.SHIPPED, S.DELIVERED})
ENDED = frozenset({S.REJECTED, S.CANCELLED})
SETTLED = FULFILLED | ENDED
ORDERS, INVENTORY, PAYMENTS, SHIPPING, MESSAGING = "orders", "inventory", "payments", "shipping", "messaging"
# Participants' statuses, as their contracts report them.
HELD, COMMITTED, RELEASED, RETURNED = "held", "committed", "released", "returned"
AUTHORIZED = "authorized"
SHIPMENT_CREATED, SHIPMENT_CANCELLED = "created", "cancelled"

OrderCheck = Callable[[OrderFacts, datetime], Iterator[Finding]]


def _with(facts: OrderFacts, status: str) -> list[ReservationRecord]:
    return [r for r in facts.reservations if r.status == status]


def _same_currency(a: str | None, b: str | None) -> bool:
    return (a or "").upper() == (b or "").upper()


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _order_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


# --- money: orders ⇔ payments ⇔ ledger


def capture_missing(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o, p = facts.order, facts.payment
    if o.state in FULFILLED and p.captures == 0:
        yield Finding(
            kind=K.CAPTURE_MISSING,
            order_id=o.id,
            modules=(ORDERS, PAYMENTS),
            unit=o.currency,
            expected=o.total_minor,
            actual=0,
            summary=f"{o.state} order has no capture of {money(o.total_minor, o.currency)}",
            suggested_repair=f"Look the capture up at the gateway (key {o.id}:capture): record it if it went "
            "through, otherwise capture again with the customer's consent or cancel the order.",
        )


def capture_mismatch(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o, p = facts.order, facts.payment
    if o.state not in FULFILLED or not p.captures:
        return
    currencies_agree = len(p.capture_currencies) == 1 and _same_currency(p.capture_currencies[0], o.currency)
    if p.captures != 1 or p.captured_minor != o.total_minor or not currencies_agree:
        captured = money(p.captured_minor, "/".join(p.capture_currencies))
        yield Finding(
            kind=K.CAPTURE_MISMATCH,
            order_id=o.id,
            modules=(ORDERS, PAYMENTS),
            unit=o.currency,
            expected=o.total_minor,
            actual=p.captured_minor,
            summary=f"{o.state} order of {money(o.total_minor, o.currency)} has {p.captures} capture(s) of {captured}",
            suggested_repair="Compare with the gateway; refund what was taken too much, or settle the difference "
            "with the customer.",
            details={"captures": p.captures, "capture_currencies": list(p.capture_currencies)},
        )


def fulfilled_order_refunded(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o, p = facts.order, facts.payment
    if o.state in FULFILLED and p.refunded_minor:
        yield Finding(
            kind=K.FULFILLED_ORDER_REFUNDED,
            order_id=o.id,
            modules=(ORDERS, PAYMENTS),
            unit=o.currency,
            expected=0,
            actual=p.refunded_minor,
            summary=f"{o.state} order was refunded {money(p.refunded_minor, o.currency)}",
            suggested_repair="Find out why it was refunded: cancel the order if that was meant, otherwise charge "
            "again with the customer's consent.",
        )


def ledger_unbalanced(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o, p = facts.order, facts.payment
    if p.ledger_debit_minor != p.ledger_credit_minor:
        yield Finding(
            kind=K.LEDGER_UNBALANCED,
            order_id=o.id,
            modules=(PAYMENTS,),
            unit=o.currency,
            expected=p.ledger_debit_minor,
            actual=p.ledger_credit_minor,
            summary=f"ledger of the order does not balance: debits {money(p.ledger_debit_minor, o.currency)}, "
            f"credits {money(p.ledger_credit_minor, o.currency)}",
            suggested_repair="Find the journal missing one side in the payments ledger and post it.",
        )


def ledger_mismatch(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    """The ledger's sales differ from both the order and the payment records.

    When the ledger agrees with one of them, the other one is what is wrong,
    and a payments check reports it.
    """
    o, p = facts.order, facts.payment
    if o.state not in SETTLED:
        return
    kept = o.total_minor if o.state in FULFILLED else 0
    recorded = p.captured_minor - p.refunded_minor
    foreign = [c for c in p.ledger_currencies if not _same_currency(c, o.currency)]
    if foreign or p.ledger_sales_minor not in (kept, recorded):
        yield Finding(
            kind=K.LEDGER_MISMATCH,
            order_id=o.id,
            modules=(ORDERS, PAYMENTS),
            unit=o.currency,
            expected=kept,
            actual=p.ledger_sales_minor,
            summary=f"ledger books {money(p.ledger_sales_minor, o.currency)} of sales for a {o.state} order of "
            f"{money(kept, o.currency)} (captures less refunds: {money(recorded, o.currency)})",
            suggested_repair="Post the missing or reversing journal so that sales equal captures less refunds.",
            details={"ledger_currencies": list(p.ledger_currencies)},
        )


def authorization_open(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o, p = facts.order, facts.payment
    if o.state in ENDED and p.authorization_status == AUTHORIZED:
        yield Finding(
            kind=K.AUTHORIZATION_OPEN,
            order_id=o.id,
            modules=(ORDERS, PAYMENTS),
            unit=p.currency or o.currency,
            expected=0,
            actual=p.authorized_minor,
            summary=f"{o.state} order still holds {money(p.authorized_minor, p.currency)} on the customer's card",
            suggested_repair="Void the authorization (payments void_payment).",
            repair="void_payment",
        )


def capture_not_refunded(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o, p = facts.order, facts.payment
    if o.state in ENDED and p.captures and not p.refunds:
        yield Finding(
            kind=K.CAPTURE_NOT_REFUNDED,
            order_id=o.id,
            modules=(ORDERS, PAYMENTS),
            unit=o.currency,
            expected=p.captured_minor,
            actual=0,
            summary=f"{o.state} order: {money(p.captured_minor, o.currency)} captured and never refunded",
            suggested_repair="Refund the capture (payments refund_payment).",
            repair="refund_payment",
        )


def refund_mismatch(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o, p = facts.order, facts.payment
    if o.state in ENDED and p.refunds and p.refunded_minor != p.captured_minor:
        yield Finding(
            kind=K.REFUND_MISMATCH,
            order_id=o.id,
            modules=(ORDERS, PAYMENTS),
            unit=o.currency,
            expected=p.captured_minor,
            actual=p.refunded_minor,
            summary=f"{o.state} order: refunded {money(p.refunded_minor, o.currency)} of "
            f"{money(p.captured_minor, o.currency)} captured",
            suggested_repair="Settle the difference at the gateway by hand and record what was done.",
        )


# --- stock: orders ⇔ reservations ⇔ stock rows


def hold_of_ended_order(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o = facts.order
    if o.state not in ENDED:
        return
    for r in _with(facts, HELD):
        yield Finding(
            kind=K.HOLD_OF_ENDED_ORDER,
            order_id=o.id,
            modules=(ORDERS, INVENTORY),
            sku=r.sku,
            unit=UNITS,
            expected=0,
            actual=r.quantity,
            summary=f"{o.state} order still holds {r.quantity} x {r.sku}",
            suggested_repair="Release the hold (inventory release_stock).",
            repair="release_stock",
        )


def hold_of_fulfilled_order(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o = facts.order
    if o.state not in FULFILLED:
        return
    for r in _with(facts, HELD):
        yield Finding(
            kind=K.HOLD_OF_FULFILLED_ORDER,
            order_id=o.id,
            modules=(ORDERS, INVENTORY),
            sku=r.sku,
            unit=UNITS,
            expected=r.quantity,
            actual=0,
            summary=f"{o.state} order holds {r.quantity} x {r.sku} never committed as sold",
            suggested_repair="Commit the hold in inventory before it expires, or cancel the order if the stock is "
            "gone.",
            details={"expires_at": r.expires_at.isoformat()},
        )


def sale_not_returned(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o = facts.order
    if o.state not in ENDED:
        return
    for r in _with(facts, COMMITTED):
        yield Finding(
            kind=K.SALE_NOT_RETURNED,
            order_id=o.id,
            modules=(ORDERS, INVENTORY),
            sku=r.sku,
            unit=UNITS,
            expected=0,
            actual=r.quantity,
            summary=f"{o.state} order still counts {r.quantity} x {r.sku} as sold",
            suggested_repair="Return the units to stock (inventory return_stock).",
            repair="return_stock",
        )


def sale_not_committed(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o = facts.order
    if o.state not in FULFILLED:
        return
    suggestion = "Check the warehouse: take the units out of stock by hand, or cancel the order."
    if not facts.reservations:
        yield Finding(
            kind=K.SALE_NOT_COMMITTED,
            order_id=o.id,
            modules=(ORDERS, INVENTORY),
            summary=f"{o.state} order has no reservation at all",
            suggested_repair=suggestion,
        )
    for r in facts.reservations:
        if r.status in (RELEASED, RETURNED):
            yield Finding(
                kind=K.SALE_NOT_COMMITTED,
                order_id=o.id,
                modules=(ORDERS, INVENTORY),
                sku=r.sku,
                unit=UNITS,
                expected=r.quantity,
                actual=0,
                summary=f"{o.state} order's {r.quantity} x {r.sku} went back to stock ({r.status})",
                suggested_repair=suggestion,
            )


def expired_hold(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    """A hold past its expiry that the expiry job did not release (finished orders have their own kinds)."""
    o = facts.order
    if o.state in SETTLED:
        return
    for r in _with(facts, HELD):
        if r.expires_at < now:
            overdue = int((now - r.expires_at).total_seconds())
            yield Finding(
                kind=K.EXPIRED_HOLD,
                order_id=o.id,
                modules=(ORDERS, INVENTORY),
                sku=r.sku,
                unit=UNITS,
                expected=0,
                actual=r.quantity,
                summary=f"{o.state} order's hold of {r.quantity} x {r.sku} expired {_duration(overdue)} ago and "
                "was not released",
                suggested_repair="Release the hold (inventory release_stock); the saga then cannot commit the "
                "lapsed stock and compensates the order.",
                repair="release_stock",
                details={"expires_at": r.expires_at.isoformat()},
            )


def stock_sold_mismatch(tallies: Iterable[StockTally]) -> Iterator[Finding]:
    for t in tallies:
        if t.sold != t.sold_by_reservations:
            yield Finding(
                kind=K.STOCK_SOLD_MISMATCH,
                modules=(INVENTORY,),
                sku=t.sku,
                unit=UNITS,
                expected=t.sold_by_reservations,
                actual=t.sold,
                summary=f"{t.sku} ({t.policy}): the stock row counts {t.sold} sold, its committed reservations "
                f"{t.sold_by_reservations}",
                suggested_repair="Find the commit or return that missed the stock row (the SKU's reservations in "
                "the inventory admin) and correct the counter.",
            )


def stock_reserved_mismatch(tallies: Iterable[StockTally]) -> Iterator[Finding]:
    for t in tallies:
        if t.reserved != t.reserved_by_reservations:
            yield Finding(
                kind=K.STOCK_RESERVED_MISMATCH,
                modules=(INVENTORY,),
                sku=t.sku,
                unit=UNITS,
                expected=t.reserved_by_reservations,
                actual=t.reserved,
                summary=f"{t.sku} ({t.policy}): the stock row counts {t.reserved} reserved, its held reservations "
                f"{t.reserved_by_reservations}",
                suggested_repair="Find the hold or release that missed the stock row and correct the counter.",
            )


# --- shipments ⇔ orders


def shipment_of_ended_order(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o, s = facts.order, facts.shipment
    if o.state not in ENDED or s is None or s.status == SHIPMENT_CANCELLED:
        return
    cancellable = s.status == SHIPMENT_CREATED
    yield Finding(
        kind=K.SHIPMENT_OF_ENDED_ORDER,
        order_id=o.id,
        modules=(ORDERS, SHIPPING),
        reference=s.shipment_id,
        summary=f"{o.state} order has a {s.status} shipment ({s.carrier} {s.tracking_number})",
        suggested_repair="Cancel the shipment (shipping cancel_shipment)."
        if cancellable
        else "The parcel has left: recall it with the carrier and settle the order by hand.",
        repair="cancel_shipment" if cancellable else "",
        details={"shipment_status": s.status, "tracking_number": s.tracking_number},
    )


def shipment_missing(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o, s = facts.order, facts.shipment
    if o.state in FULFILLED and (s is None or s.status == SHIPMENT_CANCELLED):
        yield Finding(
            kind=K.SHIPMENT_MISSING,
            order_id=o.id,
            modules=(ORDERS, SHIPPING),
            reference=s.shipment_id if s else "",
            summary=f"{o.state} order has {'only a cancelled shipment' if s else 'no shipment'}",
            suggested_repair="Create its shipment (shipping create_shipment), or cancel the order if it cannot "
            "be sent.",
        )


# --- sagas and messages


def saga_past_deadline(facts: OrderFacts, now: datetime) -> Iterator[Finding]:
    o = facts.order
    if o.state in MOVING_STATES and o.deadline_at < now:
        overdue = int((now - o.deadline_at).total_seconds())
        yield Finding(
            kind=K.SAGA_PAST_DEADLINE,
            order_id=o.id,
            modules=(ORDERS,),
            unit=SECONDS,
            expected=0,
            actual=overdue,
            summary=f"{o.state} order is {_duration(overdue)} past its deadline",
            suggested_repair="Re-issue its saga (orders recovery): past its deadline, the saga compensates it.",
            repair="resume_saga",
            details={"deadline_at": o.deadline_at.isoformat()},
        )


def outbox_stalled(messages: Iterable[StalledMessage], now: datetime) -> Iterator[Finding]:
    for m in messages:
        age = int((now - m.created_at).total_seconds())
        yield Finding(
            kind=K.OUTBOX_STALLED,
            order_id=_order_uuid(m.aggregate_id),
            modules=(m.module,),
            reference=m.message_id,
            unit=SECONDS,
            expected=0,
            actual=age,
            summary=f"{m.module} outbox: {m.message_type} for {m.aggregate_id} unpublished for {_duration(age)}",
            suggested_repair="Publish it (the relay's drain); if no relay is running, start one (see /readyz).",
            repair="publish_outbox",
            details={"message_type": m.message_type, "created_at": m.created_at.isoformat()},
        )


def dead_letter_open(letters: Iterable[DeadLetterSummary]) -> Iterator[Finding]:
    for d in letters:
        consumer_module = d.consumer.split(".", 1)[0]
        yield Finding(
            kind=K.DEAD_LETTER_OPEN,
            order_id=_order_uuid(d.order_id),
            modules=tuple(sorted({MESSAGING, d.module, consumer_module})),
            reference=str(d.letter_id),
            summary=f"{d.message_type} → {d.consumer} gave up after {d.attempts} attempt(s): {d.error}",
            suggested_repair="Retry, resolve or discard it in the dead-letter admin (or manage.py dead_letters).",
            details={"consumer": d.consumer, "message_type": d.message_type, "attempts": d.attempts},
        )


ORDER_CHECKS: tuple[OrderCheck, ...] = (
    capture_missing,
    capture_mismatch,
    fulfilled_order_refunded,
    ledger_unbalanced,
    ledger_mismatch,
    authorization_open,
    capture_not_refunded,
    refund_mismatch,
    hold_of_ended_order,
    hold_of_fulfilled_order,
    sale_not_returned,
    sale_not_committed,
    expired_hold,
    shipment_of_ended_order,
    shipment_missing,
    saga_past_deadline,
)


def check_orders(facts: Iterable[OrderFacts], now: datetime) -> list[Finding]:
    return [finding for f in facts for check in ORDER_CHECKS for finding in check(f, now)]


def ledger_out_of_balance(*, debit_minor: int, credit_minor: int, explained_minor: int) -> Iterator[Finding]:
    """The whole ledger, every order and currency: an imbalance no order's finding accounts for."""
    unexplained = debit_minor - credit_minor - explained_minor
    if unexplained:
        yield Finding(
            kind=K.LEDGER_UNBALANCED,
            modules=(PAYMENTS,),
            expected=debit_minor,
            actual=credit_minor,
            summary=f"the ledger as a whole is out of balance by {unexplained} minor units beyond the orders "
            "checked (all currencies)",
            suggested_repair="Run reconcile without --since/--region to find the orders; then post the missing "
            "entries.",
            details={"unexplained_minor": unexplained},
        )
