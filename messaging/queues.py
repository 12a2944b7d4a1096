"""What is waiting on the broker: how far behind the consumers of a message type are."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import redis

from messaging.drain import taken_key
from messaging.redis import redis_client
from messaging.subscriptions import load_all_consumers, subscribers

log = logging.getLogger("messaging.queues")


@dataclass(frozen=True)
class QueueWait:
    """Messages waiting for the consumers of one message type, when the oldest of them was written, how many
    the consumers have taken off these queues so far (``messaging.drain``; None when the broker was not read),
    and how many producers have announced for them so far (``queue_waits(announce=…)``; None when not asked or
    not read)."""

    depth: int = 0
    oldest_at: datetime | None = None
    taken: int | None = None
    announced: int | None = None


def announced_key(queue: str) -> str:
    return f"queue:announced:{queue}"


def queue_wait(message_type: str, region: str = "") -> QueueWait:
    """What waits for the consumers of ``message_type`` (in ``region``), read in one round trip.

    kombu pushes on the left and consumers pop on the right, so the tail of
    each queue is its oldest message; one this function cannot read counts as
    absent. A broker that cannot be reached counts as empty queues: nothing is
    known to wait, and callers go on as they would then.
    """
    return queue_waits(message_type, [region])[region]


def queue_waits(
    message_type: str, regions: Sequence[str], *, announce: Mapping[str, int] | None = None
) -> dict[str, QueueWait]:
    """``queue_wait`` for each of ``regions``, all read in one round trip.

    ``announce``: messages of each region that are on their way but maybe not on the broker yet (their outbox
    row committed, perhaps not published yet), added to each of the region's queues' announced counter in the
    same round trip, and every region's counters read back. A queue's length shows a message only once the relay
    has published it; two readings of the counter tell how many were announced between them, by every process
    that announces. A region's announcement is added to each of its queues and summed back, as its depth is.
    Counters are never reset: only their growth means something. The client sends a pipeline again after a
    timeout, so a round trip that Redis applied but did not answer announces its messages twice: a brief
    overcount, while Redis is in trouble only.
    """
    if not subscribers(message_type):
        load_all_consumers()
    queues = {region: sorted({sub.queue_for(region) for sub in subscribers(message_type)}) for region in regions}
    return _read(queues, what=message_type, announce=announce)


def queues_wait(queues: list[str], *, what: str = "") -> QueueWait:
    """What waits in ``queues``, read in one round trip; a broker that cannot be reached counts as empty."""
    return _read({"": queues}, what=what)[""]


def _read(
    groups: dict[str, list[str]], *, what: str, announce: Mapping[str, int] | None = None
) -> dict[str, QueueWait]:
    """What waits in each group of queues, all of them read in one round trip (with ``announce``, each group's
    announcement added to its queues' counters, which are read back)."""
    per_queue = 3 if announce is None else 4
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            for group, queues in groups.items():
                for queue in queues:
                    pipe.llen(queue)
                    pipe.lindex(queue, -1)
                    pipe.get(taken_key(queue))
                    if announce is not None and announce.get(group):
                        pipe.incrby(announced_key(queue), announce[group])
                    elif announce is not None:
                        pipe.get(announced_key(queue))
            replies = pipe.execute()
    except redis.RedisError as exc:
        queues = [queue for group in groups.values() for queue in group]
        log.warning("cannot read the queues of %s (%s); treating them as empty", what or queues, exc)
        return {group: QueueWait() for group in groups}
    waits, start = {}, 0
    for group, queues in groups.items():
        mine, start = replies[start : start + per_queue * len(queues)], start + per_queue * len(queues)
        depths, tails, taken = mine[0::per_queue], mine[1::per_queue], mine[2::per_queue]
        created = [at for at in (_created_at(raw) for raw in tails if raw is not None) if at is not None]
        waits[group] = QueueWait(
            depth=sum(depths),
            oldest_at=min(created, default=None),
            taken=sum(int(count or 0) for count in taken),
            announced=None if announce is None else sum(int(count or 0) for count in mine[3::per_queue]),
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
