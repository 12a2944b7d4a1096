"""Sweeps that keep sagas moving when a worker or a message was lost."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.utils import timezone

from messaging.api import queue_wait, update_where_then_insert
from orders.contracts import COMPENSATE_ORDER, RESUME_SAGA, START_SAGA
from orders.models import Order, OrdersOutbox, OrderState
from orders.saga_lock import saga_lock
from orders.services.interventions import NotApplicable, order_review_decline
from orders.services.transitions import order_event

S = OrderState
MOVING_STATES = (S.PENDING, S.RESERVING, S.RESERVED, S.CONFIRMING, S.COMPENSATING)
SAGA_MESSAGES = (START_SAGA, RESUME_SAGA, COMPENSATE_ORDER)


def orders_recover(*, stale_after: timedelta, limit: int = 500) -> list[tuple[uuid.UUID, str]]:
    """Re-issue the next message of every saga that has not moved for ``stale_after``.

    The saga itself decides what that means: resume from the last recorded
    step, or compensate when the order's deadline has passed. Each order is
    claimed by bumping ``updated_at``, so concurrent sweeps do not both send.

    An order a worker is driving right now is left alone: its saga lock is held,
    so the phase is slow (a third party taking its time), not stalled, and a
    message re-issued for it would only bounce off the lock until that worker
    finished. So is an order whose message may still be on its way: one with an
    unpublished saga message in the outbox (the relay is behind), or one that stalled before
    the oldest message still waiting in its queue was written (the workers are
    behind). Re-issuing those would only add work to a backlog: under load
    that once doubled the saga messages and made new orders wait behind them.
    """
    now = timezone.now()
    stuck = list(
        Order.objects.filter(state__in=MOVING_STATES, updated_at__lt=now - stale_after).order_by("updated_at")[:limit]
    )
    in_outbox = set(
        OrdersOutbox.objects.filter(
            published_at__isnull=True,
            message_type__in=SAGA_MESSAGES,
            aggregate_id__in=[str(order.id) for order in stuck],
        ).values_list("aggregate_id", flat=True)
    )
    queued_since: dict[tuple[str, str], datetime | None] = {}
    issued = []
    for order in stuck:
        message = COMPENSATE_ORDER if order.state == S.COMPENSATING else RESUME_SAGA
        if str(order.id) in in_outbox:
            continue
        key = (message, order.region)
        if key not in queued_since:
            queued_since[key] = queue_wait(message, order.region).oldest_at
        if queued_since[key] is not None and queued_since[key] <= order.updated_at:
            continue
        with saga_lock(order.id) as nobody_driving:
            if not nobody_driving:
                continue  # a worker is in the middle of it (a slow phase): not stalled
            # Claimed by moving updated_at on, with its message, in one statement: a concurrent sweep finds
            # updated_at changed and sends nothing.
            reason = "recovered after stalling"
            claimed = update_where_then_insert(
                Order,
                where={"id": order.pk, "updated_at": order.updated_at},
                values={"updated_at": now},
                rows=[order_event(order, message_type=message, correlation_id=str(order.id), reason=reason)],
            )
            if not claimed:
                continue
        issued.append((order.id, message))
    return issued


def orders_decline_expired_reviews(*, review_timeout: timedelta, limit: int = 500) -> list[uuid.UUID]:
    """A fraud review nobody decided in time is declined."""
    cutoff = timezone.now() - review_timeout
    declined = []
    for order_id in Order.objects.filter(state=S.ON_HOLD, updated_at__lt=cutoff).values_list("pk", flat=True)[:limit]:
        try:
            order_review_decline(order_id=order_id, note="review deadline passed")
        except NotApplicable:
            continue
        declined.append(order_id)
    return declined
