"""Turning a function into a Celery consumer with exactly-once effects.

``@consumer`` registers the function for a message type and wraps it so that:
- with an ``inbox`` model, the inbox row and the function's effect commit in
  one transaction on the module's alias: a redelivered message is skipped;
- a transient error is retried with exponential backoff and jitter, up to
  ``max_retries``; a permanent error, or retries exhausted, becomes a dead
  letter at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from celery import Task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections, transaction
from kombu.exceptions import OperationalError as BrokerError

from config.celery import app as celery_app
from messaging.context import bound, envelope_context
from messaging.contracts import Envelope, TransientError
from messaging.dead_letters import dead_letter_record, dead_letter_retry_succeeded
from messaging.drain import message_taken
from messaging.metrics import CONSUMER_OUTCOMES
from messaging.models import InboxMessage
from messaging.retries import NO_RETRY_LIMIT, retry_countdown
from messaging.subscriptions import Subscription, queue_for, subscribe
from messaging.tracing import span

log = logging.getLogger("messaging.consumer")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    BrokerError,
)

Handler = Callable[[Envelope], None]
GiveUpHandler = Callable[[Envelope, BaseException], None]


def inbox_claim(inbox: type[InboxMessage], *, message_ids: list[Any], consumer_name: str) -> set[str]:
    """Inbox rows, in one statement, for the ids this consumer has not seen; returns those ids (as strings).
    Sorted first, so that two claims with ids in common take their locks in one order."""
    with connections[inbox.objects.db].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {inbox._meta.db_table} (message_id, consumer, processed_at) "
            "SELECT DISTINCT m, %s, now() FROM unnest(%s::uuid[]) AS m ON CONFLICT DO NOTHING RETURNING message_id",
            [consumer_name, sorted(set(message_ids))],
        )
        return {str(message_id) for (message_id,) in cursor.fetchall()}


def apply_once(handler: Handler, envelope: Envelope, *, inbox: type[InboxMessage], consumer_name: str) -> bool:
    """Apply ``handler`` unless this consumer already did; True when applied."""
    alias = inbox.objects.db
    with transaction.atomic(using=alias):
        if not inbox_claim(inbox, message_ids=[envelope.message_id], consumer_name=consumer_name):
            return False
        handler(envelope)
    return True


def consumer(
    *,
    message_type: str,
    name: str,
    queue: str,
    inbox: type[InboxMessage] | None = None,
    max_retries: int | None = None,
    on_give_up: GiveUpHandler | None = None,
) -> Callable[[Handler], Task]:
    """Make ``handler(envelope)`` the consumer ``name`` of ``message_type``.

    Without an ``inbox`` the handler must be idempotent by itself (the saga is,
    by order and step). ``on_give_up(envelope, error)`` runs after the message
    became a dead letter (e.g. to put its order in front of a person).
    """
    limit = settings.MESSAGING_MAX_RETRIES if max_retries is None else max_retries

    def decorator(handler: Handler) -> Task:
        def run(task: Task, envelope_data: dict[str, Any]) -> str:
            message_taken(task.request.delivery_info)
            envelope = Envelope.model_validate(envelope_data)
            with (
                bound(**envelope_context(envelope, name), attempt=task.request.retries + 1),
                span(
                    f"consume {envelope.message_type}",
                    parent=envelope.headers,
                    consumer=name,
                    message_id=str(envelope.message_id),
                ),
            ):
                return consume(task, envelope)

        def consume(task: Task, envelope: Envelope) -> str:
            attempt = task.request.retries + 1
            try:
                if inbox is None:
                    handler(envelope)
                    applied = True
                else:
                    applied = apply_once(handler, envelope, inbox=inbox, consumer_name=name)
            except TRANSIENT_ERRORS as exc:
                if isinstance(exc, OperationalError | InterfaceError):
                    connections.close_all()  # reconnect on the retry instead of reusing a broken session
                if task.request.retries >= limit:
                    give_up_or_retry(task, envelope, name, queue, exc, on_give_up)
                    return "dead_lettered"
                CONSUMER_OUTCOMES.labels(consumer=name, outcome="retried").inc()
                log.warning(
                    "consumer %s: transient failure on %s (attempt %d): %s", name, envelope.message_id, attempt, exc
                )
                raise task.retry(exc=exc, countdown=retry_countdown(task.request.retries), max_retries=limit) from exc
            except Exception as exc:  # noqa: BLE001 - anything else is permanent for this message
                give_up_or_retry(task, envelope, name, queue, exc, on_give_up)
                return "dead_lettered"
            if not applied:
                CONSUMER_OUTCOMES.labels(consumer=name, outcome="duplicate").inc()
                log.info("consumer %s skipped a duplicate of %s", name, envelope.message_id)
                return "duplicate"
            CONSUMER_OUTCOMES.labels(consumer=name, outcome="ok").inc()
            log.info("consumer %s applied %s", name, envelope.message_type)
            retried_letter = envelope.headers.get("dead_letter_retry")
            if retried_letter:
                dead_letter_retry_succeeded(letter_id=int(retried_letter))
            return "ok"

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        task = celery_app.task(name=name, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=limit)(run)
        subscribe(Subscription(message_type=message_type, task_name=name, queue=queue))
        return task

    return decorator


def give_up_or_retry(
    task: Task, envelope: Envelope, name: str, queue: str, exc: BaseException, on_give_up: GiveUpHandler | None
) -> None:
    """``give_up``; should the dead-letter store refuse, send the message again later, past the retry limit:
    raised into Celery, the error would be acknowledged (its default for late acks) and the message lost."""
    try:
        give_up(envelope, name, queue, exc, task.request.retries + 1, on_give_up)
    except DatabaseError as refused:
        raise task.retry(
            exc=refused, countdown=retry_countdown(task.request.retries), max_retries=NO_RETRY_LIMIT
        ) from refused


def give_up(
    envelope: Envelope, name: str, queue: str, exc: BaseException, attempts: int, on_give_up: GiveUpHandler | None
) -> None:
    CONSUMER_OUTCOMES.labels(consumer=name, outcome="dead_lettered").inc()
    log.error("consumer %s: dead-lettering %s after %d attempt(s): %r", name, envelope.message_id, attempts, exc)
    try:
        dead_letter_record(
            envelope=envelope, consumer=name, queue=queue_for(queue, envelope.region), error=exc, attempts=attempts
        )
    except DatabaseError:
        # Without the dead-letter store the message must not be acknowledged as done: the caller sends it again.
        log.exception("consumer %s: could not store dead letter for %s", name, envelope.message_id)
        raise
    if on_give_up is not None:
        on_give_up(envelope, exc)
