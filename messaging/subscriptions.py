"""Which consumer tasks receive which message types (filled by @consumer)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.module_loading import autodiscover_modules


@dataclass(frozen=True)
class Subscription:
    message_type: str
    task_name: str
    queue: str  # may contain "{region}"
    batch: int = 0  # a batch consumer's most envelopes per message; 0: one envelope per message

    def queue_for(self, region: str) -> str:
        return queue_for(self.queue, region)


def queue_for(queue: str, region: str) -> str:
    """The queue a message of ``region`` goes to, for a consumer whose queue may name ``{region}``."""
    return queue.format(region=region or "eu")


_BY_TYPE: dict[str, list[Subscription]] = {}
_BY_TASK: dict[str, Subscription] = {}


def subscribe(subscription: Subscription) -> None:
    if subscription.task_name in _BY_TASK:
        return
    _BY_TASK[subscription.task_name] = subscription
    _BY_TYPE.setdefault(subscription.message_type, []).append(subscription)


def subscribers(message_type: str) -> list[Subscription]:
    return _BY_TYPE.get(message_type, [])


def all_subscriptions() -> list[Subscription]:
    return list(_BY_TASK.values())


def subscription_for_task(task_name: str) -> Subscription | None:
    return _BY_TASK.get(task_name)


def load_all_consumers() -> None:
    """Import every module's ``tasks`` so that its consumers register."""
    autodiscover_modules("tasks")
