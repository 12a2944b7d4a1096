"""Changes people (customers, staff, carriers) and timers make to an order
from outside its saga. Each is a transition plus, where work follows, a
message for the saga in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django_fsm import ConcurrentTransition, has_transition_perm

from messaging.api import BusinessError, TransientError
from orders.contracts import COMPENSATE_ORDER, ORDER_DELIVERED, ORDER_SHIPPED, RESUME_SAGA
from orders.models import Order, OrderState
from orders.services.transitions import TransitionRefused, order_transition

S = OrderState
ATTEMPTS = 5


class OrderNotFound(BusinessError):
    http_status = 404

    def __init__(self) -> None:
        super().__init__("not_found", "order not found")


class CannotCancel(BusinessError):
    http_status = 409

    def __init__(self, state: str) -> None:
        super().__init__("cannot_cancel", f"an order that is {state} can no longer be cancelled")


class NotPermitted(BusinessError):
    http_status = 403

    def __init__(self, action: str) -> None:
        super().__init__("not_permitted", f"you may not {action} this order")


class NotApplicable(BusinessError):
    http_status = 409

    def __init__(self, order: Order, action: str) -> None:
        super().__init__("not_applicable", f"cannot {action} an order that is {order.state}")


@dataclass(frozen=True)
class Outcome:
    order_id: uuid.UUID
    state: str
    changed: bool


def _retrying(order_id: uuid.UUID, change: Any, *, client_id: uuid.UUID | None = None) -> Outcome:
    """Apply ``change(order)`` to a fresh copy, again if a worker moved the order meanwhile."""
    for _ in range(ATTEMPTS):
        orders = Order.objects.filter(pk=order_id)
        if client_id is not None:
            orders = orders.filter(client_id=client_id)
        order = orders.first()
        if order is None:
            raise OrderNotFound()
        try:
            return change(order)
        except ConcurrentTransition:
            continue
    raise ConcurrentTransition(f"order {order_id} kept changing; try again")


def _compensate_with(
    order: Order, *, reason: str, actor: str, correlation_id: str, via: str = "start_compensating", user: Any = None
) -> Outcome:
    if user is not None and not has_transition_perm(getattr(order, via), user):
        raise NotPermitted("compensate")
    fields = {"failure_reason": reason} if via == "start_compensating" else {}
    order_transition(
        order,
        transition=via,
        reason=reason,
        actor=actor,
        correlation_id=correlation_id,
        event=COMPENSATE_ORDER,
        fields=fields,
    )
    return Outcome(order.id, order.state, True)


def order_cancel(*, order_id: uuid.UUID, client_id: uuid.UUID, actor: str, correlation_id: str = "") -> Outcome:
    """Cancel an order not yet shipped: its saga compensates it to ``cancelled``."""

    def change(order: Order) -> Outcome:
        if order.state in (S.CANCELLED,) or (
            order.state == S.COMPENSATING and order.failure_reason.startswith("cancelled")
        ):
            return Outcome(order.id, order.state, False)
        if order.state in (S.SHIPPED, S.DELIVERED, S.REJECTED, S.NEEDS_ATTENTION, S.COMPENSATING):
            raise CannotCancel(order.state)
        return _compensate_with(order, reason="cancelled by the customer", actor=actor, correlation_id=correlation_id)

    return _retrying(order_id, change, client_id=client_id)


def order_review_approve(*, order_id: uuid.UUID, user: Any, note: str = "") -> Outcome:
    """Fraud review passed: the saga goes on after the fraud step."""

    def change(order: Order) -> Outcome:
        if order.state != S.ON_HOLD:
            raise NotApplicable(order, "approve")
        if not has_transition_perm(order.approve_review, user):
            raise NotPermitted("approve")
        steps = (
            order.completed_steps
            if "assess_fraud" in order.completed_steps
            else [*order.completed_steps, "assess_fraud"]
        )
        order_transition(
            order,
            transition="approve_review",
            reason=f"fraud review approved. {note}".strip(),
            actor=f"staff:{user.get_username()}",
            event=RESUME_SAGA,
            fields={"completed_steps": steps},
        )
        return Outcome(order.id, order.state, True)

    return _retrying(order_id, change)


def order_review_decline(*, order_id: uuid.UUID, user: Any = None, note: str = "") -> Outcome:
    """Fraud review failed (by a person, or by its deadline): compensate."""

    def change(order: Order) -> Outcome:
        if order.state != S.ON_HOLD:
            raise NotApplicable(order, "decline")
        if user is not None and not user.has_perm("orders.review_fraud"):
            raise NotPermitted("decline")
        actor = f"staff:{user.get_username()}" if user is not None else "system"
        return _compensate_with(
            order, reason=f"fraud_declined: {note or 'declined on review'}", actor=actor, correlation_id=""
        )

    return _retrying(order_id, change)


def order_retry_compensation(*, order_id: uuid.UUID, user: Any, note: str = "") -> Outcome:
    """A person fixed what blocked the compensation: try it again."""

    def change(order: Order) -> Outcome:
        if order.state != S.NEEDS_ATTENTION:
            raise NotApplicable(order, "resume")
        return _compensate_with(
            order,
            reason=f"compensation resumed by staff. {note}".strip(),
            actor=f"staff:{user.get_username()}",
            correlation_id="",
            via="retry_compensation",
            user=user,
        )

    return _retrying(order_id, change)


def order_force_compensation(*, order_id: uuid.UUID, user: Any, note: str) -> Outcome:
    """Stop an order where it is and undo it (e.g. a saga that cannot progress)."""

    def change(order: Order) -> Outcome:
        if not user.has_perm("orders.intervene_saga"):
            raise NotPermitted("force compensation of")
        if order.state == S.NEEDS_ATTENTION:
            return _compensate_with(
                order,
                reason=f"forced compensation: {note}",
                actor=f"staff:{user.get_username()}",
                correlation_id="",
                via="retry_compensation",
                user=user,
            )
        if order.state in (S.COMPENSATING, S.SHIPPED, S.DELIVERED, S.REJECTED, S.CANCELLED):
            raise NotApplicable(order, "force compensation of")
        return _compensate_with(
            order, reason=f"forced compensation: {note}", actor=f"staff:{user.get_username()}", correlation_id=""
        )

    return _retrying(order_id, change)


def order_mark_resolved(*, order_id: uuid.UUID, user: Any, note: str) -> Outcome:
    """A person settled the order by hand (e.g. refunded at the gateway)."""
    if not note.strip():
        raise BusinessError("note_required", "say what was done to resolve the order")

    def change(order: Order) -> Outcome:
        if order.state != S.NEEDS_ATTENTION:
            raise NotApplicable(order, "mark resolved")
        if not has_transition_perm(order.mark_resolved, user):
            raise NotPermitted("mark resolved")
        order_transition(
            order, transition="mark_resolved", reason=f"resolved by hand: {note}", actor=f"staff:{user.get_username()}"
        )
        return Outcome(order.id, order.state, True)

    return _retrying(order_id, change)


def order_apply_fulfilment(*, order_id: uuid.UUID, event: str, correlation_id: str = "") -> Outcome:
    """The carrier shipped or delivered the order's parcel."""
    transition, message = {
        "shipped": ("mark_shipped", ORDER_SHIPPED),
        "delivered": ("mark_delivered", ORDER_DELIVERED),
    }[event]
    target = S.SHIPPED if event == "shipped" else S.DELIVERED

    def change(order: Order) -> Outcome:
        if order.state == target or (target == S.SHIPPED and order.state == S.DELIVERED):
            return Outcome(order.id, order.state, False)
        if order.state in (S.RESERVED, S.CONFIRMING):
            # The parcel can be faster than our bookkeeping: wait for confirmed.
            raise TransientError(f"order {order.id} is not confirmed yet")
        try:
            order_transition(
                order,
                transition=transition,
                reason=f"carrier reported {event}",
                actor="carrier",
                correlation_id=correlation_id,
                event=message,
            )
        except TransitionRefused as exc:
            raise NotApplicable(order, f"record {event} for") from exc
        return Outcome(order.id, order.state, True)

    return _retrying(order_id, change)


def order_reservation_lapsed(*, order_id: uuid.UUID, correlation_id: str = "") -> Outcome:
    """Inventory released the order's hold: an order that needed it cannot complete."""

    def change(order: Order) -> Outcome:
        if order.state not in (S.PENDING, S.RESERVING, S.ON_HOLD, S.RESERVED, S.CONFIRMING):
            return Outcome(order.id, order.state, False)
        return _compensate_with(
            order,
            reason="reservation_lapsed: the stock hold expired before the order completed",
            actor="system",
            correlation_id=correlation_id,
        )

    return _retrying(order_id, change)
