"""What is waiting on the broker: how far behind the consumers of a message type are."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import redis

from messaging.drain import taken_key
from messaging.redis import redis_client
from messaging.subscriptions import load_all_consumers, subscribers

log = logging.getLogger("messaging.queues")


@dataclass(frozen=True)
class QueueWait:
    """Messages waiting for the consumers of one message type, when the oldest of them was written, and how many
    the consumers have taken off these queues so far (``messaging.drain``; None when the broker was not read)."""

    depth: int = 0
    oldest_at: datetime | None = None
    taken: int | None = None


def queue_wait(message_type: str, region: str = "") -> QueueWait:
    """What waits for the consumers of ``message_type`` (in ``region``), read in one round trip.

    kombu pushes on the left and consumers pop on the right, so the tail of
    each queue is its oldest message; one this function cannot read counts as
    absent. A broker that cannot be reached counts as empty queues: nothing is
    known to wait, and callers go on as they would then.
    """
    return queue_waits(message_type, [region])[region]


def queue_waits(message_type: str, regions: Sequence[str]) -> dict[str, QueueWait]:
    """``queue_wait`` for each of ``regions``, all read in one round trip."""
    if not subscribers(message_type):
        load_all_consumers()
    queues = {region: sorted({sub.queue_for(region) for sub in subscribers(message_type)}) for region in regions}
    return _read(queues, what=message_type)


def queues_wait(queues: list[str], *, what: str = "") -> QueueWait:
    """What waits in ``queues``, read in one round trip; a broker that cannot be reached counts as empty."""
    return _read({"": queues}, what=what)[""]


def _read(groups: dict[str, list[str]], *, what: str) -> dict[str, QueueWait]:
    """What waits in each group of queues, all of them read in one round trip."""
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            for queues in groups.values():
                for queue in queues:
                    pipe.llen(queue)
                    pipe.lindex(queue, -1)
                    pipe.get(taken_key(queue))
            replies = pipe.execute()
    except redis.RedisError as exc:
        queues = [queue for group in groups.values() for queue in group]
        log.warning("cannot read the queues of %s (%s); treating them as empty", what or queues, exc)
        return {group: QueueWait() for group in groups}
    waits, start = {}, 0
    for group, queues in groups.items():
        mine, start = replies[start : start + 3 * len(queues)], start + 3 * len(queues)
        depths, tails, taken = mine[0::3], mine[1::3], mine[2::3]
        created = [at for at in (_created_at(raw) for raw in tails if raw is not None) if at is not None]
        waits[group] = QueueWait(
            depth=sum(depths), oldest_at=min(created, default=None), taken=sum(int(count or 0) for count in taken)
        )
    return waits


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
