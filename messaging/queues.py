"""What is waiting on the broker: how far behind the consumers of a message type are."""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime

import redis

from messaging.redis import redis_client
from messaging.subscriptions import load_all_consumers, subscribers

log = logging.getLogger("messaging.queues")


def oldest_queued_at(message_type: str, region: str = "") -> datetime | None:
    """When the oldest message still waiting for a consumer of ``message_type`` (in ``region``) was written.

    ``None`` when those queues are empty, and when the broker cannot be
    reached (nothing is known to wait: callers go on as if the queues were
    empty). kombu pushes on the left and consumers pop on the right, so the
    tail of each queue is its oldest message. A message this function cannot
    read counts as absent.
    """
    if not subscribers(message_type):
        load_all_consumers()
    oldest: datetime | None = None
    for queue in {sub.queue_for(region) for sub in subscribers(message_type)}:
        try:
            raw = redis_client().lindex(queue, -1)
        except redis.RedisError as exc:
            log.warning("cannot read queue %s (%s); treating it as empty", queue, exc)
            return None
        created = _created_at(raw) if raw is not None else None
        if created is not None and (oldest is None or created < oldest):
            oldest = created
    return oldest


def _created_at(raw: bytes) -> datetime | None:
    try:
        message = json.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, _kwargs, _embed = json.loads(body)
        return datetime.fromisoformat(args[0]["created_at"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def queued_count(message_type: str, region: str = "") -> int:
    """How many messages wait for the consumers of ``message_type`` (in ``region``); 0 when the broker cannot be
    reached."""
    if not subscribers(message_type):
        load_all_consumers()
    try:
        return sum(redis_client().llen(queue) for queue in {sub.queue_for(region) for sub in subscribers(message_type)})
    except redis.RedisError as exc:
        log.warning("cannot read the queues of %s (%s); treating them as empty", message_type, exc)
        return 0
