"""Safe repairs, each through the owner of the records: the saga's own
compensations (the participants' api), its recovery, and the outbox relay's
drain. Nothing here writes another module's rows, and every repair can run
twice without doing anything twice."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from inventory.api import release_stock, return_stock
from messaging.api import OutboxMessage, drain_batch, load_all_consumers, release_held, types_held_now
from orders.reconciliation.findings import Finding
from orders.reconciliation.models import DiscrepancyStatus
from orders.reconciliation.sources import StalledMessage
from orders.services.recovery import orders_recover
from payments.api import refund_payment, void_payment
from shipping.api import cancel_shipment

log = logging.getLogger("orders.reconciliation")

RESUME_SAGA = "resume_saga"
PUBLISH_OUTBOX = "publish_outbox"
COMPENSATIONS: dict[str, Callable[[uuid.UUID], object]] = {
    "cancel_shipment": lambda order_id: cancel_shipment(order_id=order_id),
    "refund_payment": lambda order_id: refund_payment(order_id=order_id),
    "return_stock": lambda order_id: return_stock(order_id=order_id),
    "void_payment": lambda order_id: void_payment(order_id=order_id),
    "release_stock": lambda order_id: release_stock(order_id=order_id),
}
# The saga's undo order: the last step done is the first undone.
UNDO_ORDER = ("cancel_shipment", "refund_payment", "return_stock", "void_payment", "release_stock")
if set(UNDO_ORDER) != set(COMPENSATIONS):
    raise ImproperlyConfigured("every compensation needs its place in the undo order")


@dataclass(frozen=True)
class RepairOutcome:
    status: str
    note: str


def _compensate(repair: str, order_id: uuid.UUID) -> RepairOutcome:
    try:
        COMPENSATIONS[repair](order_id)
    except Exception as exc:  # noqa: BLE001 - one failed repair must not stop the others; it is recorded
        log.warning("reconciliation: %s of order %s failed: %r", repair, order_id, exc)
        return RepairOutcome(DiscrepancyStatus.REPAIR_FAILED, f"{repair} failed: {type(exc).__name__}: {exc}")
    return RepairOutcome(DiscrepancyStatus.REPAIRED, f"{repair} done")


def compensate_orders(findings: Iterable[Finding]) -> dict[tuple[str, uuid.UUID], RepairOutcome]:
    """Apply each order's compensations once, in the saga's undo order."""
    wanted = {(f.repair, f.order_id) for f in findings if f.repair in COMPENSATIONS and f.order_id is not None}
    outcomes = {}
    for order_id in sorted({order_id for _, order_id in wanted}, key=str):
        for repair in UNDO_ORDER:
            if (repair, order_id) in wanted:
                outcomes[(repair, order_id)] = _compensate(repair, order_id)
    return outcomes


def resume_sagas(order_ids: set[uuid.UUID]) -> dict[uuid.UUID, RepairOutcome]:
    """Re-issue stalled sagas through recovery (which also re-issues any other stalled saga,
    as its periodic sweep would). A saga that moved recently is left to its own next run."""
    if not order_ids:
        return {}
    stale_after = timedelta(seconds=settings.SAGA_STALE_AFTER_S)
    issued = dict(orders_recover(stale_after=stale_after, limit=len(order_ids) + 500))
    waiting = RepairOutcome(
        DiscrepancyStatus.OPEN,
        f"not re-issued: the saga moved in the last {settings.SAGA_STALE_AFTER_S}s, or its message is still "
        "on its way (unpublished, or queued behind older ones); its next run compensates",
    )
    return {
        order_id: RepairOutcome(DiscrepancyStatus.REPAIRED, f"saga re-issued ({issued[order_id]})")
        if order_id in issued
        else waiting
        for order_id in order_ids
    }


def publish_stalled(messages: Iterable[StalledMessage], *, batch_size: int) -> dict[str, RepairOutcome]:
    """Drain each outbox holding stalled messages until they are out (oldest rows go first).

    Consumers are loaded first: a message with no known subscriber would be
    marked published without going anywhere.
    """
    by_model: dict[type[OutboxMessage], list[str]] = {}
    for m in messages:
        by_model.setdefault(m.model, []).append(m.message_id)
    if by_model:
        load_all_consumers()
    held_now = types_held_now() if by_model else ()  # what the relays hold back now stays held
    outcomes: dict[str, RepairOutcome] = {}
    for model, ids in by_model.items():
        error = ""
        try:
            for _ in range(math.ceil(len(ids) / batch_size) + 2):
                if not model.objects.filter(pk__in=ids, published_at__isnull=True).exists():
                    break
                # A row found stalled while held (held too long) is released.
                if not drain_batch(model, batch_size, hold=held_now) and not release_held(model, batch_size):
                    break
        except Exception as exc:  # noqa: BLE001 - a broker outage is recorded, not raised
            log.warning("reconciliation: draining %s failed: %r", model._meta.db_table, exc)
            error = f": {type(exc).__name__}: {exc}"
        unpublished = model.objects.filter(pk__in=ids, published_at__isnull=True)
        left = {str(pk) for pk in unpublished.values_list("pk", flat=True)}
        for message_id in ids:
            outcomes[message_id] = (
                RepairOutcome(DiscrepancyStatus.REPAIR_FAILED, f"still unpublished{error}")
                if message_id in left
                else RepairOutcome(DiscrepancyStatus.REPAIRED, "published")
            )
    return outcomes
