"""Putting messages on the broker (Celery over Redis).

Messages are Celery task messages (protocol 2), exactly what ``send_task``
would produce for the consumer's task, but built without ``send_task``'s
per-call routing and option merging: the relay already knows each message's
task and queue, and that machinery was the larger part of its CPU per message.
Queues are addressed through the default exchange, as Celery does for direct
queues, so no declaration is needed on the publishing side.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from celery.utils.nodenames import anon_nodename

from config.celery import app as celery_app
from messaging.subscriptions import Subscription, subscribers

ORIGIN = anon_nodename()


def publish_to(*, task_name: str, queue: str, envelope: dict[str, Any], producer: Any = None) -> None:
    _publish(task_name, queue, envelope, f"{envelope['message_type']} {envelope['message_id']}", producer)


def publish_batch(*, task_name: str, queue: str, envelopes: list[dict[str, Any]], producer: Any = None) -> None:
    """One message carrying ``envelopes`` to a batch consumer (``messaging.batch_consumers``)."""
    first = envelopes[0]
    label = f"{len(envelopes)} x {first['message_type']} from {first['message_id']}"
    _publish(task_name, queue, envelopes, label, producer)


def _publish(task_name: str, queue: str, argument: Any, label: str, producer: Any) -> None:
    task_id = str(uuid.uuid4())
    headers, properties, body, _sent_event = celery_app.amqp.create_task_message(
        task_id,
        task_name,
        [argument],
        {},
        argsrepr=label,
        kwargsrepr="{}",
        origin=ORIGIN,
        ignore_result=True,
    )
    with celery_app.producer_or_acquire(producer) as publisher:
        publisher.publish(
            body,
            exchange="",
            routing_key=queue,
            serializer="json",
            headers=headers,
            delivery_mode=2,
            retry=False,
            **properties,
        )


def publish_envelopes(envelopes: Iterable[dict[str, Any]], producer: Any = None) -> int:
    """Publish each envelope to every subscriber: one broker connection, one pipelined round trip; a batch
    consumer gets the envelopes for its queue in messages of at most its batch size. Returns the messages sent.

    Nothing is left half-sent silently: if the broker refuses, this raises and
    the caller keeps the rows unpublished (some may have gone out: delivery is
    at-least-once).
    """
    sent = 0
    batches: dict[tuple[Subscription, str], list[dict[str, Any]]] = {}
    with celery_app.producer_or_acquire(producer) as publisher, publisher.batch():
        for envelope in envelopes:
            for sub in subscribers(envelope["message_type"]):
                queue = sub.queue_for(envelope.get("region", ""))
                if not sub.batch:
                    publish_to(task_name=sub.task_name, queue=queue, envelope=envelope, producer=publisher)
                    sent += 1
                    continue
                batch = batches.setdefault((sub, queue), [])
                batch.append(envelope)
                if len(batch) >= sub.batch:
                    publish_batch(task_name=sub.task_name, queue=queue, envelopes=batch, producer=publisher)
                    sent += 1
                    batches[(sub, queue)] = []
        for (sub, queue), batch in batches.items():
            if batch:
                publish_batch(task_name=sub.task_name, queue=queue, envelopes=batch, producer=publisher)
                sent += 1
    return sent
