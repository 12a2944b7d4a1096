"""Consumers of the orders module: thin wrappers around the saga."""

from __future__ import annotations

import uuid

from django_fsm import ConcurrentTransition

from messaging.api import Envelope, TransientError, consumer
from orders.contracts import RESUME_SAGA, START_SAGA
from orders.saga import saga_run


def _drive(envelope: Envelope) -> None:
    try:
        saga_run(order_id=uuid.UUID(envelope.payload["order_id"]), correlation_id=envelope.correlation_id)
    except ConcurrentTransition as exc:
        # Someone (a person in the admin, a cancel) moved the order meanwhile:
        # run again against its new state.
        raise TransientError(str(exc)) from exc


@consumer(message_type=START_SAGA, name="orders.start_saga", queue="saga.{region}")
def start_saga(envelope: Envelope) -> None:
    _drive(envelope)


@consumer(message_type=RESUME_SAGA, name="orders.resume_saga", queue="saga.{region}")
def resume_saga(envelope: Envelope) -> None:
    _drive(envelope)
