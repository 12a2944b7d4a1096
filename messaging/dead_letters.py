"""Dead letters: recording a consumer's failure, and what people do about it."""

from __future__ import annotations

import traceback as tb
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from messaging.contracts import DeadLetterSummary, Envelope
from messaging.models import DeadLetter, DeadLetterAction, DeadLetterStatus
from messaging.publisher import publish_to
from messaging.subscriptions import queue_for

ALIAS = "messaging"


class DeadLetterNotActionable(ValueError):
    pass


def dead_letter_record(
    *, envelope: Envelope, consumer: str, queue: str, error: BaseException, attempts: int
) -> DeadLetter:
    now = timezone.now()
    text = "".join(tb.format_exception(type(error), error, error.__traceback__))
    with transaction.atomic(using=ALIAS):
        letter, created = DeadLetter.objects.select_for_update().get_or_create(
            message_id=envelope.message_id,
            consumer=consumer,
            defaults={
                "message_type": envelope.message_type,
                "module": envelope.source,
                "queue": queue,
                "order_id": envelope.aggregate_id
                if envelope.source == "orders"
                else envelope.payload.get("order_id", ""),
                "envelope": envelope.model_dump(mode="json"),
                "error_type": f"{type(error).__module__}.{type(error).__qualname__}",
                "error_message": str(error)[:10_000],
                "traceback": text[-20_000:],
                "attempts": attempts,
                "first_failed_at": now,
                "last_failed_at": now,
            },
        )
        if not created:
            letter.error_type = f"{type(error).__module__}.{type(error).__qualname__}"
            letter.error_message = str(error)[:10_000]
            letter.traceback = text[-20_000:]
            letter.attempts += attempts
            letter.last_failed_at = now
            letter.status = DeadLetterStatus.OPEN
            letter.save()
        DeadLetterAction.objects.create(
            dead_letter=letter,
            action="failed",
            actor="system",
            reason=f"{letter.error_type}: {letter.error_message[:500]}",
        )
    return letter


def _act(letter_id: int, *, action: str, actor: str, reason: str, status: str, allowed: set[str]) -> DeadLetter:
    with transaction.atomic(using=ALIAS):
        letter = DeadLetter.objects.select_for_update().get(pk=letter_id)
        if letter.status not in allowed:
            raise DeadLetterNotActionable(f"dead letter {letter_id} is {letter.status}; cannot {action}")
        letter.status = status
        letter.status_changed_by = actor
        letter.status_reason = reason
        letter.status_changed_at = timezone.now()
        letter.save()
        DeadLetterAction.objects.create(dead_letter=letter, action=action, actor=actor, reason=reason)
    return letter


def dead_letter_retry(*, letter_id: int, actor: str, reason: str = "") -> DeadLetter:
    """Send the message to its consumer again. A repeat failure reopens it."""
    letter = _act(
        letter_id,
        action="retry",
        actor=actor,
        reason=reason or "retry requested",
        status=DeadLetterStatus.RETRIED,
        allowed={DeadLetterStatus.OPEN, DeadLetterStatus.RETRIED},
    )
    envelope = dict(letter.envelope)
    envelope["headers"] = {**envelope.get("headers", {}), "dead_letter_retry": letter.pk}
    # Letters recorded before their queue was resolved hold its template (``saga.{region}``).
    publish_to(task_name=letter.consumer, queue=queue_for(letter.queue, envelope.get("region", "")), envelope=envelope)
    return letter


def dead_letter_resolve(*, letter_id: int, actor: str, note: str) -> DeadLetter:
    if not note.strip():
        raise DeadLetterNotActionable("resolving needs a note")
    return _act(
        letter_id,
        action="resolve",
        actor=actor,
        reason=note,
        status=DeadLetterStatus.RESOLVED,
        allowed={DeadLetterStatus.OPEN, DeadLetterStatus.RETRIED},
    )


def dead_letter_discard(*, letter_id: int, actor: str, reason: str) -> DeadLetter:
    if not reason.strip():
        raise DeadLetterNotActionable("discarding needs a reason")
    return _act(
        letter_id,
        action="discard",
        actor=actor,
        reason=reason,
        status=DeadLetterStatus.DISCARDED,
        allowed={DeadLetterStatus.OPEN, DeadLetterStatus.RETRIED},
    )


def dead_letter_retry_succeeded(*, letter_id: int) -> None:
    """A retried message went through: close its dead letter."""
    with transaction.atomic(using=ALIAS):
        updated = DeadLetter.objects.filter(pk=letter_id, status=DeadLetterStatus.RETRIED).update(
            status=DeadLetterStatus.RESOLVED,
            status_changed_at=timezone.now(),
            status_changed_by="system",
            status_reason="retry succeeded",
        )
        if updated:
            DeadLetterAction.objects.create(dead_letter_id=letter_id, action="retry_succeeded", actor="system")


def dead_letters_open(*, since: datetime | None = None, region: str = "", limit: int = 1000) -> list[DeadLetterSummary]:
    """Dead letters nobody has acted on yet, oldest first."""
    letters = DeadLetter.objects.filter(status=DeadLetterStatus.OPEN)
    if since is not None:
        letters = letters.filter(last_failed_at__gte=since)
    if region:
        letters = letters.filter(envelope__region=region)
    return [
        DeadLetterSummary(
            letter_id=letter.pk,
            module=letter.module,
            message_type=letter.message_type,
            consumer=letter.consumer,
            order_id=letter.order_id,
            error=f"{letter.error_type.rsplit('.', 1)[-1]}: {letter.error_message[:200]}",
            attempts=letter.attempts,
            first_failed_at=letter.first_failed_at,
            last_failed_at=letter.last_failed_at,
        )
        for letter in letters.order_by("first_failed_at")[:limit]
    ]
