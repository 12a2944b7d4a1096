"""Consumers and periodic jobs of the orders module: thin wrappers around services."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_fsm import ConcurrentTransition

from config.celery import app
from messaging.api import Envelope, TransientError, consumer
from orders.contracts import COMPENSATE_ORDER, RESUME_SAGA, START_SAGA
from orders.models import OrdersInbox
from orders.reconciliation.runs import ReconciliationBusy, RunOptions, reconciliation_run
from orders.reconciliation.sources import Scope
from orders.saga import saga_compensate, saga_escalate, saga_run
from orders.services.interventions import order_apply_fulfilment, order_reservation_lapsed
from orders.services.recovery import orders_decline_expired_reviews, orders_recover

log = logging.getLogger("orders.tasks")

# Other modules' events, subscribed to by name.
SHIPMENT_SHIPPED = "shipping.ShipmentShipped"
SHIPMENT_DELIVERED = "shipping.ShipmentDelivered"
RESERVATION_EXPIRED = "inventory.ReservationExpired"


def _order_id(envelope: Envelope) -> uuid.UUID:
    return uuid.UUID(envelope.payload["order_id"])


def _drive(envelope: Envelope) -> None:
    try:
        saga_run(order_id=_order_id(envelope), correlation_id=envelope.correlation_id)
    except ConcurrentTransition as exc:
        # Someone (a person in the admin, a cancel) moved the order meanwhile:
        # run again against its new state.
        raise TransientError(str(exc)) from exc


@consumer(
    message_type=START_SAGA, name="orders.start_saga", queue="saga.{region}", max_retries=settings.SAGA_MAX_RETRIES
)
def start_saga(envelope: Envelope) -> None:
    _drive(envelope)


@consumer(
    message_type=RESUME_SAGA, name="orders.resume_saga", queue="saga.{region}", max_retries=settings.SAGA_MAX_RETRIES
)
def resume_saga(envelope: Envelope) -> None:
    _drive(envelope)


def _escalate(envelope: Envelope, error: BaseException) -> None:
    saga_escalate(
        order_id=_order_id(envelope),
        reason=f"compensation failed after its retries: {error}",
        correlation_id=envelope.correlation_id,
    )


@consumer(message_type=COMPENSATE_ORDER, name="orders.compensate", queue="compensation", on_give_up=_escalate)
def compensate(envelope: Envelope) -> None:
    try:
        saga_compensate(order_id=_order_id(envelope), correlation_id=envelope.correlation_id)
    except ConcurrentTransition as exc:
        raise TransientError(str(exc)) from exc


@consumer(message_type=SHIPMENT_SHIPPED, name="orders.record_shipped", queue="saga.{region}", inbox=OrdersInbox)
def record_shipped(envelope: Envelope) -> None:
    order_apply_fulfilment(order_id=_order_id(envelope), event="shipped", correlation_id=envelope.correlation_id)


@consumer(message_type=SHIPMENT_DELIVERED, name="orders.record_delivered", queue="saga.{region}", inbox=OrdersInbox)
def record_delivered(envelope: Envelope) -> None:
    order_apply_fulfilment(order_id=_order_id(envelope), event="delivered", correlation_id=envelope.correlation_id)


@consumer(message_type=RESERVATION_EXPIRED, name="orders.reservation_lapsed", queue="compensation", inbox=OrdersInbox)
def reservation_lapsed(envelope: Envelope) -> None:
    order_reservation_lapsed(order_id=_order_id(envelope), correlation_id=envelope.correlation_id)


@app.task(name="orders.recover_sagas", acks_late=True)
def recover_sagas() -> int:
    return len(orders_recover(stale_after=timedelta(seconds=settings.SAGA_STALE_AFTER_S)))


@app.task(name="orders.expire_reviews", acks_late=True)
def expire_reviews() -> int:
    return len(orders_decline_expired_reviews(review_timeout=timedelta(seconds=settings.FRAUD_REVIEW_TIMEOUT_S)))


@app.task(name="orders.reconcile", acks_late=True)
def reconcile() -> int:
    """Reconcile the orders of the last window; returns how many discrepancies are left unresolved."""
    since = timezone.now() - timedelta(seconds=settings.RECONCILIATION_WINDOW_S)
    options = RunOptions(scope=Scope(since=since), fix=settings.RECONCILIATION_FIX, trigger="schedule")
    try:
        run = reconciliation_run(options=options)
    except ReconciliationBusy:
        log.info("reconciliation skipped: another run is going")
        return 0
    return run.unresolved
