"""Putting messages on the broker (Celery over Redis)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config.celery import app as celery_app
from messaging.subscriptions import subscribers


def publish_to(*, task_name: str, queue: str, envelope: dict[str, Any], producer: Any = None) -> None:
    celery_app.send_task(
        task_name,
        args=[envelope],
        queue=queue,
        producer=producer,
        retry=False,
        argsrepr=f"{envelope['message_type']} {envelope['message_id']}",
        kwargsrepr="{}",
    )


def publish_envelopes(envelopes: Iterable[dict[str, Any]]) -> int:
    """Publish each envelope to every subscriber: one broker connection, one pipelined round trip.

    Nothing is left half-sent silently: if the broker refuses, this raises and
    the caller keeps the rows unpublished (some may have gone out: delivery is
    at-least-once).
    """
    sent = 0
    with celery_app.producer_or_acquire() as producer, producer.batch():
        for envelope in envelopes:
            for sub in subscribers(envelope["message_type"]):
                publish_to(
                    task_name=sub.task_name,
                    queue=sub.queue_for(envelope.get("region", "")),
                    envelope=envelope,
                    producer=producer,
                )
                sent += 1
    return sent
