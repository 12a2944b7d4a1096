"""The saga under random interleavings (Hypothesis stateful), run in-process.

Orders are placed through the REST API, then driven, redelivered, crashed,
cancelled, expired, reviewed, shipped and compensated in random order while
gateway and carrier outages come and go. A "crash" is a worker dying right
after a participant call took effect (the saga's in-memory state is lost, the
message is redelivered later); a "concurrent" action is another actor (the
customer, the expiry job, the carrier) acting while a saga is between a
participant's effect and the bookkeeping that follows it.

After every step the books of all modules must agree on what can be true at
any instant; after ``settle`` (faults cleared, every message delivered, every
saga driven until it rests) they must agree on what is true at rest.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connections
from django.utils import timezone
from django_fsm import ConcurrentTransition
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

import orders.saga as saga_module
from config.database import MODULE_ALIASES
from inventory.api import get_stock_level
from inventory.contracts import StockLevel
from inventory.models import Reservation
from inventory.services import eventual_sales_settle, reservations_expire
from messaging.adapters import breaker_for
from messaging.api import TransientError, breaker_state, redis_client, set_fault_profile
from orders.models import RESTING_STATES, Order, OrderState
from orders.saga import saga_compensate, saga_run
from orders.services.interventions import (
    CannotCancel,
    NotApplicable,
    order_apply_fulfilment,
    order_cancel,
    order_reservation_lapsed,
    order_review_approve,
    order_review_decline,
)
from payments.models import Authorization, Capture, LedgerEntry, Refund
from shipping.api import get_shipment, record_fulfilment_event
from shipping.contracts import FulfilmentOutOfOrder
from shipping.models import Shipment
from tests.agreement import view
from tests.conftest import ApiCaller, order_body

S = OrderState

# --- the catalogue of one example -------------------------------------------------
STRICT = "STRICT-1"  # few units: orders compete for them, 7 at once is always too many
LUXURY = "LUX-1"  # expensive: large amounts go to fraud review (or are rejected)
BULK = "BULK-1"  # EVENTUAL: accepted without touching a hot row
CATALOGUE = {  # sku: (on_hand, policy, unit price)
    STRICT: (6, "strict", 1_000),
    LUXURY: (3, "strict", 150_000),
    BULK: (2, "eventual", 500),
}

# --- the participant calls orders.saga makes (patched to crash or interleave) -----
RUN_CALLS = (
    "clear_order",
    "assess_order",
    "reserve_stock",
    "authorize_payment",
    "commit_stock",
    "capture_payment",
    "create_shipment",
)
UNDO_CALLS = ("cancel_shipment", "refund_payment", "return_stock", "void_payment", "release_stock")
# Also the saga's own bookkeeping: die right after a step was recorded or a transition saved.
BOOKKEEPING = ("order_record_step", "order_transition")

SETTLED = frozenset({S.CONFIRMED, S.SHIPPED, S.DELIVERED})
UNDONE = frozenset({S.REJECTED, S.CANCELLED})
# Where a capture may exist unrefunded for a while: mid-confirmation, mid-compensation,
# or parked for a person. Everywhere else money taken means the order is settled.
MONEY_IN_FLIGHT = frozenset({S.CONFIRMING, S.COMPENSATING, S.NEEDS_ATTENTION})
SAGA_RETRIED = (TransientError, ConcurrentTransition)  # what the saga consumers retry
FAR_FUTURE = timedelta(days=365)
THIRD_PARTIES = ("payment_gateway", "carrier")


class WorkerDied(Exception):
    """Stands for a worker killed mid-saga: nothing after the effect runs."""


# --- the books of every module, read in bulk (one query per table) ----------------
@dataclass
class Books:
    states: dict[str, str] = field(default_factory=dict)
    reservations: dict[str, list[tuple[str, int, str, str]]] = field(default_factory=dict)
    authorization: dict[str, str] = field(default_factory=dict)
    captures: dict[str, list[int]] = field(default_factory=dict)
    refunded: dict[str, int] = field(default_factory=dict)
    ledger: dict[str, list[int]] = field(default_factory=dict)
    shipment: dict[str, str] = field(default_factory=dict)
    stock: dict[str, StockLevel] = field(default_factory=dict)

    def unrefunded_capture(self, oid: str) -> bool:
        return sum(self.captures.get(oid, [])) > self.refunded.get(oid, 0)

    def statuses(self, oid: str) -> set[str]:
        return {status for _, _, _, status in self.reservations.get(oid, [])}


def read_books() -> Books:
    books = Books()
    books.states = {str(pk): state for pk, state in Order.objects.values_list("pk", "state")}
    for oid, sku, qty, policy, status in Reservation.objects.values_list(
        "order_id", "sku", "quantity", "policy", "status"
    ):
        books.reservations.setdefault(str(oid), []).append((sku, qty, policy, status))
    books.authorization = {str(oid): status for oid, status in Authorization.objects.values_list("order_id", "status")}
    for oid, amount in Capture.objects.values_list("order_id", "amount_minor"):
        books.captures.setdefault(str(oid), []).append(amount)
    books.refunded = {str(oid): amount for oid, amount in Refund.objects.values_list("order_id", "amount_minor")}
    for oid, debit, credit in LedgerEntry.objects.values_list("order_id", "debit_minor", "credit_minor"):
        totals = books.ledger.setdefault(str(oid), [0, 0])
        totals[0] += debit
        totals[1] += credit
    books.shipment = {str(oid): status for oid, status in Shipment.objects.values_list("order_id", "status")}
    # Through inventory's face: it counts EVENTUAL sales not yet booked on the row as sold.
    books.stock = {sku: get_stock_level(sku=sku) for sku in CATALOGUE}
    return books


# --- a clean slate for every example ----------------------------------------------
_TABLES: dict[str, list[str]] = {}
KEEP_TABLES = {"django_migrations", "orders_apiclient"}  # the API client lives across examples


def wipe_module_tables() -> None:
    """TRUNCATE every module schema's tables (one statement per alias, ~ms each;
    ``flush`` would also re-run post_migrate on every alias, much slower)."""
    for alias in MODULE_ALIASES:
        connection = connections[alias]
        if alias not in _TABLES:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = %s AND table_type = 'BASE TABLE'",
                    [connection.settings_dict["SCHEMA"]],
                )
                _TABLES[alias] = sorted(name for (name,) in cursor.fetchall() if name not in KEEP_TABLES)
        if _TABLES[alias]:
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE " + ", ".join(f'"{name}"' for name in _TABLES[alias]))


@contextmanager
def participant_hook(name: str, hook: Callable[[], None], *, before: bool = False) -> Iterator[None]:
    """Run ``hook`` once, right after (or before) orders.saga's first call of ``name``."""
    real = getattr(saga_module, name)
    fired = False

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal fired
        if before and not fired:
            fired = True
            hook()
        result = real(*args, **kwargs)
        if not before and not fired:
            fired = True
            hook()
        return result

    with mock.patch.object(saga_module, name, wrapper):
        yield


def close_breaker(service: str) -> None:
    """Time passes beyond the breaker's reset timeout and a trial call succeeds."""
    breaker_state(service)  # re-reads the shared state
    breaker_for(service).record_success()


def die() -> None:
    raise WorkerDied()


class SagaMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self, caller: ApiCaller, staff: Any, stock: Callable[..., None]) -> None:
        super().__init__()
        wipe_module_tables()
        redis_client().flushdb()  # gateway memory, fault profiles, breakers
        for service in THIRD_PARTIES:
            close_breaker(service)  # a process may still remember an open breaker for a moment
        for sku, (on_hand, policy, price) in CATALOGUE.items():
            stock(sku, on_hand, policy=policy, price=price)
        self.caller = caller
        self.staff = staff
        self.placed: dict[str, tuple[dict[str, Any], str]] = {}  # order id -> (body, idempotency key)
        self.names: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        # Messages published but not consumed yet: ("lapsed" | "shipped" | "delivered", order id).
        self.mailbox: list[tuple[str, str]] = []

    # --- helpers -------------------------------------------------------------------
    def state(self, order_id: str) -> str:
        return Order.objects.get(pk=order_id).state

    def drive(self, order_id: str, runner: Callable[..., str] = saga_run) -> str | None:
        """One delivery of a saga message; a failure the consumer retries is fine."""
        try:
            rested = runner(order_id=uuid.UUID(order_id))
        except SAGA_RETRIED:
            return None
        assert rested == self.state(order_id)
        return rested

    def deliver(self, kind: str, order_id: str) -> bool:
        """Consume one message; False when its consumer would retry it later."""
        oid = uuid.UUID(order_id)
        try:
            if kind == "lapsed":
                order_reservation_lapsed(order_id=oid, correlation_id=order_id)
            else:
                order_apply_fulfilment(order_id=oid, event=kind, correlation_id=order_id)
        except TransientError:
            return False
        except NotApplicable:
            pass  # the order moved on (e.g. it was cancelled): the message is dropped
        return True

    def expire(self, *, deliver: bool) -> None:
        for order_id in reservations_expire(now=timezone.now() + FAR_FUTURE):
            self.mailbox.append(("lapsed", str(order_id)))
        if deliver:
            self.deliver_messages()

    def cancel(self, order_id: str) -> None:
        before = Order.objects.get(pk=order_id)
        try:
            outcome = order_cancel(order_id=uuid.UUID(order_id), client_id=self.caller.client_id, actor="customer")
        except CannotCancel:
            assert before.state in (S.SHIPPED, S.DELIVERED, S.REJECTED, S.NEEDS_ATTENTION, S.COMPENSATING)
            return
        after = Order.objects.get(pk=order_id)
        assert outcome.state == after.state
        assert after.state in (S.COMPENSATING, S.CANCELLED)
        assert after.failure_reason.startswith("cancelled")

    def carrier_reports(self, order_id: str, event: str) -> None:
        shipment = get_shipment(order_id=uuid.UUID(order_id))
        if shipment is None:
            return
        try:
            record_fulfilment_event(shipment_id=uuid.UUID(shipment.shipment_id), event=event)
        except FulfilmentOutOfOrder:
            return
        self.mailbox.append((event, order_id))

    def make_late(self, order_id: str) -> None:
        Order.objects.filter(pk=order_id).update(deadline_at=timezone.now() - timedelta(seconds=1))

    # --- rules ---------------------------------------------------------------------
    def _place(self, sku: str, quantity: int, token: str, country: str, bulk: int, *, into: str = "orders") -> str:
        body = order_body(sku, quantity, token=token, country=country)
        if bulk:
            body["lines"].append({"sku": BULK, "quantity": bulk})
        key = str(uuid.uuid4())
        response = self.caller.place(body, key=key)
        assert response.status_code == 202, response.content
        order_id = response.json()["id"]
        self.placed[order_id] = (body, key)
        # Named as Hypothesis names the bundle's values in a failing example ("extra": not in the bundle).
        self.names[order_id] = name = f"{into}_{sum(n.startswith(into + '_') for n in self.ids)}"
        self.ids[name] = order_id
        return order_id

    order_specs = st.tuples(
        st.sampled_from([STRICT, STRICT, STRICT, LUXURY]),
        st.sampled_from([1, 1, 2, 3, 7]),  # 7 is more than there is
        st.sampled_from(["tok_ok", "tok_ok", "tok_ok", "tok_declined", "tok_capture_declined"]),
        st.sampled_from(["DE", "DE", "DE", "FR", "US", "KP", "AQ"]),
        st.sampled_from([0, 0, 1, 3]),  # units of the EVENTUAL item on a second line
    )

    @initialize(target=orders, specs=st.lists(order_specs, min_size=1, max_size=3))
    def first_orders(self, specs: list[tuple[str, int, str, str, int]]) -> Any:
        return multiple(*(self._place(*spec) for spec in specs))

    @rule(target=orders, spec=order_specs)
    def place_order(self, spec: tuple[str, int, str, str, int]) -> str:
        return self._place(*spec)

    @rule(order=orders)
    def client_retries_the_post(self, order: str) -> None:
        body, key = self.placed[order]
        response = self.caller.place(body, key=key)
        assert response.status_code == 202, response.content
        assert response.json()["id"] == order
        assert Order.objects.count() == len(self.placed)

    @rule(order=orders)
    def run_saga(self, order: str) -> None:
        self.drive(order)

    @rule()
    def workers_catch_up(self) -> None:
        """Every order that is still moving gets one (re)delivery of its saga message."""
        for order_id in Order.objects.exclude(state__in=RESTING_STATES).values_list("pk", flat=True):
            self.drive(str(order_id))

    @rule(order=orders)
    def compensation_queue(self, order: str) -> None:
        self.drive(order, saga_compensate)

    def moving(self) -> list[str]:
        """Orders whose saga has work left, by the name the failing example prints."""
        ids = Order.objects.exclude(state__in=RESTING_STATES).values_list("pk", flat=True)
        return sorted(self.names[str(pk)] for pk in ids)

    def draw_moving(self, data: st.DataObject) -> str:
        """An order with work left, or a new one when every order rests."""
        moving = self.moving()
        if not moving:
            return self._place(*data.draw(self.order_specs, label="new order"), into="extra")
        return self.ids[data.draw(st.sampled_from(moving), label="order")]

    @rule(data=st.data(), call=st.sampled_from(RUN_CALLS + UNDO_CALLS + BOOKKEEPING))
    def worker_dies(self, data: st.DataObject, call: str) -> None:
        order = self.draw_moving(data)
        with participant_hook(call, die), suppress(WorkerDied):
            self.drive(order)

    @rule(
        data=st.data(),
        call=st.sampled_from(RUN_CALLS + UNDO_CALLS),
        before=st.booleans(),
        action=st.sampled_from(["cancel", "expire", "expire_and_deliver", "carrier_ships", "deadline"]),
    )
    def meanwhile(self, data: st.DataObject, call: str, before: bool, action: str) -> None:
        """Another actor acts while the saga is at a participant call."""
        order = self.draw_moving(data)
        hooks: dict[str, Callable[[], None]] = {
            "cancel": lambda: self.cancel(order),
            "expire": lambda: self.expire(deliver=False),
            "expire_and_deliver": lambda: self.expire(deliver=True),
            "carrier_ships": lambda: self.carrier_reports(order, "shipped"),
            "deadline": lambda: self.make_late(order),
        }
        with participant_hook(call, hooks[action], before=before):
            self.drive(order)

    @rule(order=orders)
    def customer_cancels(self, order: str) -> None:
        self.cancel(order)

    @rule(deliver=st.booleans())
    def expiry_job(self, deliver: bool) -> None:
        self.expire(deliver=deliver)

    @rule()
    def eventual_sales_are_booked(self) -> None:
        eventual_sales_settle()

    @rule()
    def deliver_messages(self) -> None:
        pending, self.mailbox = self.mailbox, []
        self.mailbox = [(kind, oid) for kind, oid in pending if not self.deliver(kind, oid)]

    @rule(order=orders, event=st.sampled_from(["shipped", "delivered"]))
    def carrier_event(self, order: str, event: str) -> None:
        self.carrier_reports(order, event)

    @rule(order=orders, approve=st.booleans())
    def fraud_review(self, order: str, approve: bool) -> None:
        on_hold = self.state(order) == S.ON_HOLD
        try:
            if approve:
                order_review_approve(order_id=uuid.UUID(order), user=self.staff)
            else:
                order_review_decline(order_id=uuid.UUID(order), user=self.staff)
        except NotApplicable:
            assert not on_hold
            return
        assert on_hold

    @rule(order=orders)
    def deadline_passes(self, order: str) -> None:
        self.make_late(order)

    @rule(data=st.data(), service=st.sampled_from(THIRD_PARTIES), lasts=st.booleans())
    def saga_meets_an_outage(self, data: st.DataObject, service: str, lasts: bool) -> None:
        """A saga runs while a third party times out (the outage may outlast the run)."""
        order = self.draw_moving(data)
        set_fault_profile(service, timeout_rate=1.0)
        self.drive(order)
        if not lasts:
            set_fault_profile(service)

    @rule(service=st.sampled_from(THIRD_PARTIES), down=st.booleans())
    def outage(self, service: str, down: bool) -> None:
        if down:
            set_fault_profile(service, timeout_rate=1.0)
        else:
            set_fault_profile(service)

    @rule()
    def settle(self) -> None:
        """Faults clear, every message is consumed, every saga runs until it rests."""
        for service in THIRD_PARTIES:
            set_fault_profile(service)
            close_breaker(service)
        for _ in range(8):
            self.deliver_messages()
            moving = list(Order.objects.exclude(state__in=RESTING_STATES).values_list("pk", "state"))
            if not moving and not self.mailbox:
                break
            for order_id, state in moving:
                self.drive(str(order_id), saga_compensate if state == S.COMPENSATING else saga_run)
        self.check_at_rest()

    def check_at_rest(self) -> None:
        problems = []
        assert not self.mailbox, f"undeliverable messages: {self.mailbox}"
        for order_id in self.placed:
            v = view(order_id)
            if v.state not in RESTING_STATES:
                problems.append(f"{order_id} still {v.state}")
            held = set(v.reservations.values())
            if v.state in SETTLED:
                ok = (
                    v.captures == 1
                    and v.refunded_minor == 0
                    and v.authorization == "captured"
                    and held == {"committed"}
                    and v.shipment in ("created", "shipped", "delivered")
                )
                if not ok:
                    problems.append(f"{order_id} {v.state} but {v}")
            if v.state in UNDONE | {S.ON_HOLD}:
                ok = (
                    held <= {"released", "returned"}
                    and v.authorization not in ("authorized", "captured")
                    and v.captured_minor == v.refunded_minor
                    and v.shipment in (None, "cancelled")
                )
                if not ok:
                    problems.append(f"{order_id} {v.state} but {v}")
        assert not problems, "at rest:\n" + "\n".join(problems)

    # --- invariants: true after every step -----------------------------------------
    @invariant()
    def books_agree(self) -> None:
        books = read_books()
        problems = []
        for oid, state in books.states.items():
            captures = books.captures.get(oid, [])
            if len(captures) > 1:
                problems.append(f"{oid}: {len(captures)} captures")
            if books.unrefunded_capture(oid) and state not in SETTLED | MONEY_IN_FLIGHT:
                problems.append(f"{oid}: money captured and kept but the order is {state}")
            if state in SETTLED and (len(captures) != 1 or books.refunded.get(oid)):
                problems.append(f"{oid}: {state} with captures {captures}, refunded {books.refunded.get(oid)}")
            if state in UNDONE:
                kept = []
                if books.statuses(oid) & {"held", "committed"}:
                    kept.append(f"reservations {books.reservations[oid]}")
                if books.authorization.get(oid) in ("authorized", "captured"):
                    kept.append(f"authorization {books.authorization[oid]}")
                if books.unrefunded_capture(oid):
                    kept.append("an unrefunded capture")
                if books.shipment.get(oid) not in (None, "cancelled"):
                    kept.append(f"shipment {books.shipment[oid]}")
                if kept:
                    problems.append(f"{oid}: {state} but holds " + ", ".join(kept))
            debit, credit = books.ledger.get(oid, [0, 0])
            moved = sum(captures) + books.refunded.get(oid, 0)
            if not debit == credit == moved:
                problems.append(f"{oid}: ledger D{debit} C{credit}, money moved {moved}")
        for sku, (initial, policy, _) in CATALOGUE.items():
            level = books.stock[sku]
            lines = [(qty, status) for rs in books.reservations.values() for s, qty, _, status in rs if s == sku]
            held = sum(qty for qty, status in lines if status == "held")
            committed = sum(qty for qty, status in lines if status == "committed")
            if level.on_hand + level.sold != initial:
                problems.append(f"{sku}: on_hand {level.on_hand} + sold {level.sold} != {initial}")
            if level.sold != committed:
                problems.append(f"{sku}: sold {level.sold} but committed reservations {committed}")
            if level.reserved != (held if policy == "strict" else 0):
                problems.append(f"{sku}: reserved {level.reserved} but held reservations {held}")
            if policy == "strict" and level.available < 0:
                problems.append(f"{sku}: available {level.available} < 0")
        debits = sum(d for d, _ in books.ledger.values())
        credits = sum(c for _, c in books.ledger.values())
        if debits != credits:
            problems.append(f"ledger: debits {debits} != credits {credits}")
        assert not problems, "\n".join(problems)

    def teardown(self) -> None:
        # At the end of a run that did not fail already, everything must come to rest.
        if sys.exc_info()[0] is None:
            self.settle()


@pytest.fixture
def staff(db: None) -> Any:
    user = get_user_model().objects.create_user("reviewer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["review_fraud", "intervene_saga"]))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_saga_keeps_every_module_consistent(api_caller: ApiCaller, staff: Any, stock: Callable[..., None]) -> None:
    run_state_machine_as_test(
        lambda: SagaMachine(api_caller, staff, stock),
        settings=settings(
            # SAGA_STATEFUL_EXAMPLES=500 for a longer hunt.
            max_examples=int(os.environ.get("SAGA_STATEFUL_EXAMPLES", "20")),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


# --- the shortest failing sequence the machine found, kept as a plain test ---------
@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize(
    ("country", "call", "meanwhile"),
    [
        # state.meanwhile(action='cancel', before=True, call='clear_order') on an order to KP
        ("KP", "clear_order", "cancel"),
        # state.meanwhile(action='expire_and_deliver', before=True, call='commit_stock')
        ("DE", "commit_stock", "expire_and_deliver"),
    ],
)
def test_a_step_failing_after_someone_else_started_compensation(
    api_caller: ApiCaller, stock: Callable[..., None], country: str, call: str, meanwhile: str
) -> None:
    """While a saga waits on a participant, the customer cancels (or the hold lapses):
    the order is already compensating. The participant then refuses (destination
    denied, reservation lapsed): the saga must leave the order to its compensation,
    not fail with an error its consumer takes for permanent (a dead letter)."""
    stock(STRICT, 6)
    response = api_caller.place(order_body(STRICT, 1, country=country))
    assert response.status_code == 202, response.content
    order_id = uuid.UUID(response.json()["id"])

    def other_actor() -> None:
        if meanwhile == "cancel":
            order_cancel(order_id=order_id, client_id=api_caller.client_id, actor="customer")
        else:
            for expired in reservations_expire(now=timezone.now() + FAR_FUTURE):
                order_reservation_lapsed(order_id=expired)
        assert Order.objects.get(pk=order_id).state == S.COMPENSATING

    with participant_hook(call, other_actor, before=True), suppress(*SAGA_RETRIED):
        saga_run(order_id=order_id)

    assert saga_compensate(order_id=order_id) == (S.CANCELLED if meanwhile == "cancel" else S.REJECTED)
    v = view(order_id)
    assert v.authorization in (None, "voided")
    assert set(v.reservations.values()) <= {"released"}
