"""Reads for reconciliation: orders a page at a time, and what the other
modules recorded about each page, in one batched call per module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from inventory.api import get_reservations, get_stock_tallies
from inventory.contracts import StockTally
from messaging.api import OutboxMessage, dead_letters_open, outbox_models
from messaging.contracts import DeadLetterSummary
from orders.models import Order
from orders.reconciliation.findings import OrderFacts
from payments.api import get_payment_records
from shipping.api import get_shipments

ORDER_FIELDS = (
    "id",
    "state",
    "region",
    "currency",
    "subtotal_minor",
    "tax_minor",
    "version",
    "deadline_at",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class Scope:
    """Which orders a run looks at; stock is always checked as a whole."""

    since: datetime | None = None
    region: str = ""


@dataclass(frozen=True)
class StalledMessage:
    model: type[OutboxMessage]
    module: str
    message_id: str
    message_type: str
    aggregate_id: str
    created_at: datetime


def scoped_orders(scope: Scope, *, until: datetime) -> QuerySet[Order]:
    """Orders in scope placed up to ``until`` (a run does not chase orders placed while it runs)."""
    orders = Order.objects.filter(created_at__lte=until)
    if scope.since is not None:
        orders = orders.filter(created_at__gte=scope.since)
    if scope.region:
        orders = orders.filter(region=scope.region)
    return orders


def order_pages(scope: Scope, *, until: datetime, page_size: int) -> Iterator[list[Order]]:
    """Orders in scope by (created_at, id), a page at a time: keyset paging, no offsets."""
    orders = scoped_orders(scope, until=until).only(*ORDER_FIELDS).order_by("created_at", "id")
    page = list(orders[:page_size])
    while page:
        yield page
        last = page[-1]
        after = Q(created_at__gt=last.created_at) | Q(created_at=last.created_at, id__gt=last.id)
        page = list(orders.filter(after)[:page_size])


def orders_by_id(order_ids: list[uuid.UUID]) -> list[Order]:
    return list(Order.objects.filter(pk__in=order_ids).only(*ORDER_FIELDS).order_by("created_at", "id"))


def order_facts(orders: list[Order]) -> list[OrderFacts]:
    """The other modules' records of ``orders``: one call per module for the whole page."""
    if not orders:
        return []
    ids = [order.id for order in orders]
    reservations = get_reservations(order_ids=ids)
    payments = get_payment_records(order_ids=ids)
    shipments = get_shipments(order_ids=ids)
    return [
        OrderFacts(
            order=order,
            reservations=tuple(reservations.get(order.id, ())),
            payment=payments[order.id],
            shipment=shipments.get(order.id),
        )
        for order in orders
    ]


def settled_facts(orders: list[Order]) -> list[OrderFacts]:
    """Facts of the orders that did not move while the other modules were read.

    An order that changed meanwhile is in the middle of a transition; comparing
    it to records read before or after that would report a discrepancy that is
    not there. The next run sees it at rest.
    """
    facts = order_facts(orders)
    if not facts:
        return []
    versions = dict(Order.objects.filter(pk__in=[o.id for o in orders]).values_list("id", "version"))
    return [f for f in facts if versions.get(f.order.id) == f.order.version]


def stock_tallies() -> list[StockTally]:
    return get_stock_tallies()


def stalled_messages(scope: Scope, *, created_before: datetime, limit: int) -> list[StalledMessage]:
    """Unpublished rows of every module's outbox created before ``created_before``, oldest first. A row the relay
    holds back while the saga is behind (a non-critical event) is waiting on purpose, and counts only once it has
    been held for longer than ``MESSAGING_HELD_STALE_AFTER_S`` (the saga behind that long, or a relay gone)."""
    stalled = []
    held_since = timezone.now() - timedelta(seconds=settings.MESSAGING_HELD_STALE_AFTER_S)
    for model in outbox_models():
        rows = model.objects.filter(
            Q(held_at__isnull=True) | Q(held_at__lt=held_since),
            published_at__isnull=True,
            created_at__lt=created_before,
        )
        if scope.since is not None:
            rows = rows.filter(created_at__gte=scope.since)
        if scope.region:
            rows = rows.filter(region=scope.region)
        module = model.objects.db
        stalled += [
            StalledMessage(model, module, str(pk), message_type, aggregate_id, created_at)
            for pk, message_type, aggregate_id, created_at in rows.order_by("created_at").values_list(
                "pk", "message_type", "aggregate_id", "created_at"
            )[:limit]
        ]
    return stalled


def open_dead_letters(scope: Scope, *, limit: int) -> list[DeadLetterSummary]:
    """Dead letters nobody has acted on yet."""
    return dead_letters_open(since=scope.since, region=scope.region or "", limit=limit)
