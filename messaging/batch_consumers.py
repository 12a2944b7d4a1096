"""Consumers that take their messages many at a time, for events off the critical path.

``@batch_consumer`` is ``@consumer`` for a handler of ``list[Envelope]``: the relay gathers a type's rows in
its outbox and publishes them as messages of up to ``max_batch`` envelopes (``messaging.event_hold``), so one
task, one inbox statement and one transaction serve them all. What stays per envelope:

- exactly once: the inbox gets a row per envelope in the transaction of the handler's effect, and the handler
  sees only the envelopes not applied before (a redelivered batch, a batch that overlaps an earlier one);
- a transient error retries the batch with backoff, and retries exhausted make a dead letter of each envelope
  the inbox does not hold (of each, when the inbox cannot be read);
- any other error runs the envelopes one at a time, each in its own transaction, so that only the one that
  fails becomes a dead letter and the rest are applied; a transient error meanwhile retries only the envelopes
  not yet applied or dead-lettered;
- should the dead-letter store refuse, the envelopes without a letter are sent again later (past the retry
  limit) instead of being acknowledged and lost;
- a message of one envelope (a dead letter retried from the admin) is a batch of one, and a retried letter is
  resolved once its envelope is in the inbox, applied now or before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections, transaction
from pydantic import ValidationError

from config.celery import app as celery_app
from messaging.consumers import TRANSIENT_ERRORS, give_up, inbox_claim
from messaging.context import bound
from messaging.contracts import Envelope
from messaging.dead_letters import dead_letter_retry_succeeded
from messaging.drain import message_taken
from messaging.metrics import CONSUMER_OUTCOMES
from messaging.models import InboxMessage
from messaging.retries import NO_RETRY_LIMIT, retry_countdown
from messaging.subscriptions import Subscription, subscribe
from messaging.tracing import span

log = logging.getLogger("messaging.consumer")

BatchHandler = Callable[[list[Envelope]], None]
DEFAULT_MAX_BATCH = 100


def apply_batch_once(
    handler: BatchHandler, envelopes: list[Envelope], *, inbox: type[InboxMessage], consumer_name: str
) -> list[Envelope]:
    """Apply ``handler`` to the envelopes this consumer has not applied yet, in one transaction; returns them."""
    alias = inbox.objects.db
    with transaction.atomic(using=alias):
        fresh = inbox_claim(inbox, message_ids=[e.message_id for e in envelopes], consumer_name=consumer_name)
        new: list[Envelope] = []
        for envelope in envelopes:
            if str(envelope.message_id) in fresh:
                fresh.discard(str(envelope.message_id))  # the same message twice in one batch applies once
                new.append(envelope)
        if new:
            handler(new)
    return new


def _valid(items: list[dict[str, Any]], *, consumer_name: str) -> list[Envelope]:
    """The envelopes of a message. One that does not parse cannot have come from a relay; it is logged whole
    (nothing is lost) and left out, so that it does not stop the others."""
    envelopes = []
    for item in items:
        try:
            envelopes.append(Envelope.model_validate(item))
        except ValidationError as exc:
            log.error(
                "consumer %s: left out an envelope that does not parse: %s", consumer_name, exc, extra={"raw": item}
            )
    return envelopes


def _wire(envelopes: list[Envelope]) -> list[dict[str, Any]]:
    return [envelope.model_dump(mode="json") for envelope in envelopes]


def _not_applied(envelopes: list[Envelope], *, inbox: type[InboxMessage], consumer_name: str) -> list[Envelope]:
    """The envelopes, once each, that the inbox does not hold: all of them when the inbox cannot be read."""
    unique = list({envelope.message_id: envelope for envelope in envelopes}.values())
    try:
        done = {
            str(m)
            for m in inbox.objects.filter(
                consumer=consumer_name, message_id__in=[e.message_id for e in unique]
            ).values_list("message_id", flat=True)
        }
    except DatabaseError:
        return unique
    return [envelope for envelope in unique if str(envelope.message_id) not in done]


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
            message_taken(task.request.delivery_info)
            items = [envelopes_data] if isinstance(envelopes_data, dict) else envelopes_data
            envelopes = _valid(items, consumer_name=name)
            attempt = task.request.retries + 1
            with (
                bound(consumer=name, message_type=message_type, batch_size=len(envelopes), attempt=attempt),
                span(f"consume {message_type}", consumer=name, batch=len(envelopes)),
            ):
                return consume(task, envelopes) if envelopes else {"applied": 0, "duplicate": 0, "dead_lettered": 0}

        def consume(task: Task, envelopes: list[Envelope]) -> dict[str, int]:
            try:
                applied = apply_batch_once(handler, envelopes, inbox=inbox, consumer_name=name)
            except TRANSIENT_ERRORS as exc:
                return transient(task, envelopes, exc)
            except Exception as exc:  # noqa: BLE001 - one envelope may be at fault: find it, apply the rest
                if len(envelopes) > 1:
                    return one_at_a_time(task, envelopes)
                dead_letter(task, envelopes, exc)
                return outcome(envelopes, applied=[], dead=envelopes)
            return outcome(envelopes, applied=applied, dead=[])

        def one_at_a_time(task: Task, envelopes: list[Envelope]) -> dict[str, int]:
            applied: list[Envelope] = []
            dead: list[Envelope] = []
            for position, envelope in enumerate(envelopes):
                try:
                    applied += apply_batch_once(handler, [envelope], inbox=inbox, consumer_name=name)
                except TRANSIENT_ERRORS as exc:
                    # The retry carries what is left: what was applied or dead-lettered does not go again.
                    return transient(task, envelopes[position:], exc)
                except Exception as exc:  # noqa: BLE001 - permanent for this envelope
                    dead_letter(task, [envelope], exc, then=envelopes[position + 1 :])
                    dead.append(envelope)
            return outcome(envelopes, applied=applied, dead=dead)

        def transient(task: Task, envelopes: list[Envelope], exc: BaseException) -> dict[str, int]:
            if isinstance(exc, OperationalError | InterfaceError):
                connections.close_all()  # reconnect on the retry instead of reusing a broken session
            if task.request.retries >= limit:
                pending = _not_applied(envelopes, inbox=inbox, consumer_name=name)
                dead_letter(task, pending, exc)
                return {"applied": 0, "duplicate": len(envelopes) - len(pending), "dead_lettered": len(pending)}
            CONSUMER_OUTCOMES.labels(consumer=name, outcome="retried").inc(len(envelopes))
            log.warning(
                "consumer %s: transient failure on %d messages (attempt %d): %s",
                name,
                len(envelopes),
                task.request.retries + 1,
                exc,
            )
            raise task.retry(
                args=[_wire(envelopes)], exc=exc, countdown=retry_countdown(task.request.retries), max_retries=limit
            ) from exc

        def dead_letter(
            task: Task, envelopes: list[Envelope], exc: BaseException, *, then: list[Envelope] | None = None
        ) -> None:
            """A dead letter for each envelope. Should the store refuse, the envelopes not yet recorded and those
            still to be tried (``then``) are sent again later, past the retry limit: acknowledged without a
            letter, they would be lost."""
            for position, envelope in enumerate(envelopes):
                try:
                    give_up(envelope, name, queue, exc, task.request.retries + 1, None)
                except DatabaseError as refused:
                    raise task.retry(
                        args=[_wire([*envelopes[position:], *(then or [])])],
                        exc=refused,
                        countdown=retry_countdown(task.request.retries),
                        max_retries=NO_RETRY_LIMIT,
                    ) from refused

        def outcome(envelopes: list[Envelope], *, applied: list[Envelope], dead: list[Envelope]) -> dict[str, int]:
            duplicate = len(envelopes) - len(applied) - len(dead)
            for label, count in (("ok", len(applied)), ("duplicate", duplicate)):
                if count:
                    CONSUMER_OUTCOMES.labels(consumer=name, outcome=label).inc(count)
            log.info(
                "consumer %s applied %d %s (%d duplicates)",
                name,
                len(applied),
                message_type,
                duplicate,
                extra={"correlation_ids": sorted({e.correlation_id for e in envelopes})},
            )
            failed = {e.message_id for e in dead}
            for envelope in envelopes:
                # A retried dead letter is done once its envelope is in the inbox: applied now, or before (a
                # duplicate).
                retried_letter = envelope.headers.get("dead_letter_retry")
                if retried_letter and envelope.message_id not in failed:
                    dead_letter_retry_succeeded(letter_id=int(retried_letter))
            return {"applied": len(applied), "duplicate": duplicate, "dead_lettered": len(dead)}

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        task = celery_app.task(name=name, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=limit)(run)
        subscribe(Subscription(message_type=message_type, task_name=name, queue=queue, batch=max_batch))
        return task

    return decorator
