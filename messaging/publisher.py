"""Putting messages on the broker (Celery over Redis)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config.celery import app as celery_app
from messaging.subscriptions import Subscription, subscribers


def publish_to(*, task_name: str, queue: str, envelope: dict[str, Any], producer: Any = None) -> None:
    celery_app.send_task(task_name, args=[envelope], queue=queue, producer=producer, retry=False)


def publish_envelopes(envelopes: Iterable[dict[str, Any]]) -> int:
    """Publish each envelope to every subscriber over one broker connection.

    Raises if the broker refuses; the caller then keeps the rows unpublished.
    """
    sent = 0
    with celery_app.producer_or_acquire() as producer:
        for envelope in envelopes:
            subs: list[Subscription] = subscribers(envelope["message_type"])
            for sub in subs:
                publish_to(
                    task_name=sub.task_name,
                    queue=sub.queue_for(envelope.get("region", "")),
                    envelope=envelope,
                    producer=producer,
                )
                sent += 1
    return sent
