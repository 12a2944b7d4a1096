"""Consumers that take their messages many at a time, for events off the critical path.

``@batch_consumer`` is ``@consumer`` for a handler of ``list[Envelope]``: the relay gathers a type's rows in
its outbox and publishes them as messages of up to ``max_batch`` envelopes (``messaging.event_hold``), so one
task, one inbox statement and one transaction serve them all. What stays per envelope:

- exactly once: the inbox gets a row per envelope in the transaction of the handler's effect, and the handler
  sees only the envelopes not applied before (a redelivered batch, a batch that overlaps an earlier one);
- a transient error retries the batch with backoff (its applied envelopes are skipped by the inbox), and
  retries exhausted make a dead letter of each envelope;
- any other error runs the envelopes one at a time, each in its own transaction, so that only the one that
  fails becomes a dead letter and the rest are applied;
- a message of one envelope (a dead letter retried from the admin) is a batch of one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction

from config.celery import app as celery_app
from messaging.consumers import TRANSIENT_ERRORS, give_up
from messaging.context import bound
from messaging.contracts import Envelope
from messaging.dead_letters import dead_letter_retry_succeeded
from messaging.metrics import CONSUMER_OUTCOMES
from messaging.models import InboxMessage
from messaging.retries import retry_countdown
from messaging.subscriptions import Subscription, subscribe
from messaging.tracing import span

log = logging.getLogger("messaging.consumer")

BatchHandler = Callable[[list[Envelope]], None]
DEFAULT_MAX_BATCH = 100


def _claim_many(inbox: type[InboxMessage], *, alias: str, message_ids: list[Any], consumer_name: str) -> set[str]:
    """Inbox rows for the ids not seen before; returns those ids (as strings)."""
    table = inbox._meta.db_table
    with connections[alias].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (message_id, consumer, processed_at) "
            "SELECT DISTINCT m, %s, now() FROM unnest(%s::uuid[]) AS m ON CONFLICT DO NOTHING RETURNING message_id",
            [consumer_name, message_ids],
        )
        return {str(message_id) for (message_id,) in cursor.fetchall()}


def apply_batch_once(
    handler: BatchHandler, envelopes: list[Envelope], *, inbox: type[InboxMessage], consumer_name: str
) -> list[Envelope]:
    """Apply ``handler`` to the envelopes this consumer has not applied yet, in one transaction; returns them."""
    alias = inbox.objects.db
    with transaction.atomic(using=alias):
        fresh = _claim_many(
            inbox, alias=alias, message_ids=[e.message_id for e in envelopes], consumer_name=consumer_name
        )
        new: list[Envelope] = []
        for envelope in envelopes:
            if str(envelope.message_id) in fresh:
                fresh.discard(str(envelope.message_id))  # the same message twice in one batch applies once
                new.append(envelope)
        if new:
            handler(new)
    return new


def batch_consumer(
    *,
    message_type: str,
    name: str,
    queue: str,
    inbox: type[InboxMessage],
    max_batch: int = DEFAULT_MAX_BATCH,
    max_retries: int | None = None,
) -> Callable[[BatchHandler], Task]:
    """Make ``handler(envelopes)`` the consumer ``name`` of ``message_type``, fed up to ``max_batch`` at a time.

    For consumers on a non-critical queue whose effects do not depend on the order of their messages: the
    relay holds their messages back to gather them (``messaging.event_hold``)."""
    limit = settings.MESSAGING_MAX_RETRIES if max_retries is None else max_retries

    def decorator(handler: BatchHandler) -> Task:
        def run(task: Task, envelopes_data: list[dict[str, Any]] | dict[str, Any]) -> dict[str, int]:
            items = [envelopes_data] if isinstance(envelopes_data, dict) else envelopes_data
            envelopes = [Envelope.model_validate(item) for item in items]
            attempt = task.request.retries + 1
            with (
                bound(consumer=name, message_type=message_type, batch_size=len(envelopes), attempt=attempt),
                span(f"consume {message_type}", parent=envelopes[0].headers, consumer=name, batch=len(envelopes)),
            ):
                return consume(task, envelopes)

        def consume(task: Task, envelopes: list[Envelope]) -> dict[str, int]:
            try:
                applied = apply_batch_once(handler, envelopes, inbox=inbox, consumer_name=name)
            except TRANSIENT_ERRORS as exc:
                return transient(task, envelopes, exc)
            except Exception as exc:  # noqa: BLE001 - one envelope may be at fault: find it, apply the rest
                if len(envelopes) > 1:
                    return one_at_a_time(task, envelopes)
                give_up(envelopes[0], name, queue, exc, task.request.retries + 1, None)
                return outcome(envelopes, applied=[], dead=1)
            return outcome(envelopes, applied=applied, dead=0)

        def one_at_a_time(task: Task, envelopes: list[Envelope]) -> dict[str, int]:
            applied: list[Envelope] = []
            dead = 0
            for envelope in envelopes:
                try:
                    applied += apply_batch_once(handler, [envelope], inbox=inbox, consumer_name=name)
                except TRANSIENT_ERRORS as exc:
                    # Retry the whole batch: what was applied meanwhile is skipped by the inbox.
                    done = {e.message_id for e in applied}
                    return transient(task, [e for e in envelopes if e.message_id not in done], exc)
                except Exception as exc:  # noqa: BLE001 - permanent for this envelope
                    give_up(envelope, name, queue, exc, task.request.retries + 1, None)
                    dead += 1
            return outcome(envelopes, applied=applied, dead=dead)

        def transient(task: Task, envelopes: list[Envelope], exc: BaseException) -> dict[str, int]:
            if isinstance(exc, OperationalError | InterfaceError):
                connections.close_all()  # reconnect on the retry instead of reusing a broken session
            attempt = task.request.retries + 1
            if task.request.retries >= limit:
                for envelope in envelopes:
                    give_up(envelope, name, queue, exc, attempt, None)
                return {"applied": 0, "duplicate": 0, "dead_lettered": len(envelopes)}
            CONSUMER_OUTCOMES.labels(consumer=name, outcome="retried").inc(len(envelopes))
            log.warning(
                "consumer %s: transient failure on %d messages (attempt %d): %s", name, len(envelopes), attempt, exc
            )
            raise task.retry(exc=exc, countdown=retry_countdown(task.request.retries), max_retries=limit) from exc

        def outcome(envelopes: list[Envelope], *, applied: list[Envelope], dead: int) -> dict[str, int]:
            duplicate = len(envelopes) - len(applied) - dead
            for label, count in (("ok", len(applied)), ("duplicate", duplicate)):
                if count:
                    CONSUMER_OUTCOMES.labels(consumer=name, outcome=label).inc(count)
            log.info("consumer %s applied %d %s (%d duplicates)", name, len(applied), message_type, duplicate)
            for envelope in applied:
                retried_letter = envelope.headers.get("dead_letter_retry")
                if retried_letter:
                    dead_letter_retry_succeeded(letter_id=int(retried_letter))
            return {"applied": len(applied), "duplicate": duplicate, "dead_lettered": dead}

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        task = celery_app.task(name=name, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=limit)(run)
        subscribe(Subscription(message_type=message_type, task_name=name, queue=queue, batch=max_batch))
        return task

    return decorator
