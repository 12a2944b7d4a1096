from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import connections, router
from django.utils import timezone

from fraud import rules
from fraud.contracts import Decision
from fraud.models import Assessment, CustomerProfile
from messaging.api import create_once

VELOCITY_WINDOW = timedelta(hours=1)
ALIAS = router.db_for_write(CustomerProfile)
# Run for every order and every confirmation: written once, not rebuilt by the ORM on each call.
_COUNT_RECENT = f'SELECT count(*) FROM "{Assessment._meta.db_table}" WHERE "customer_id" = %s AND "created_at" >= %s'
_PROFILE = CustomerProfile._meta.db_table
_RECORD_CONFIRMED = (
    f'INSERT INTO "{_PROFILE}" AS p ("customer_id", "confirmed_orders", "confirmed_amount_minor", '
    '"last_confirmed_at") SELECT c, n, a, %s FROM unnest(%s::varchar[], %s::int[], %s::bigint[]) AS t (c, n, a) '
    'ON CONFLICT ("customer_id") DO UPDATE SET '
    '"confirmed_orders" = p."confirmed_orders" + EXCLUDED."confirmed_orders", '
    '"confirmed_amount_minor" = p."confirmed_amount_minor" + EXCLUDED."confirmed_amount_minor", '
    '"last_confirmed_at" = EXCLUDED."last_confirmed_at"'
)


def assessment_create(
    *, order_id: uuid.UUID, customer_id: str, amount_minor: int, currency: str, region: str, shipping_country: str
) -> Assessment:
    """Score an order once; a repeated call returns the first assessment."""
    recent = _assessments_since(customer_id, timezone.now() - VELOCITY_WINDOW)
    points, reasons = rules.score(
        rules.Facts(
            amount_minor=amount_minor,
            region=region,
            shipping_country=shipping_country,
            recent_orders_of_customer=recent,
        )
    )
    decision = (
        Decision.REJECT
        if points >= rules.REJECT_AT
        else Decision.REVIEW
        if points >= rules.REVIEW_AT
        else Decision.APPROVE
    )
    assessment, _ = create_once(
        Assessment,
        order_id=order_id,
        defaults={
            "customer_id": customer_id,
            "amount_minor": amount_minor,
            "currency": currency,
            "region": region,
            "shipping_country": shipping_country,
            "score": points,
            "decision": decision,
            "reasons": reasons,
        },
    )
    return assessment


def customer_profiles_record_confirmed(*, confirmations: Iterable[tuple[str, int]]) -> None:
    """Count confirmed orders, given as (customer, amount), per customer; call inside the consumer's transaction.

    One upsert for them all: a first order creates the profile, a later one adds to it, and two first orders of
    one customer confirmed at once cannot both try to create it. Customers are written in one order (sorted), as
    the consumer's inbox rows are, so that two batches with customers in common wait for each other rather than
    deadlock (should one still happen, it is a transient error and the batch is retried)."""
    totals: dict[str, tuple[int, int]] = {}
    for customer_id, amount_minor in confirmations:
        orders, amount = totals.get(customer_id, (0, 0))
        totals[customer_id] = (orders + 1, amount + amount_minor)
    if not totals:
        return
    customers = sorted(totals)
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(
            _RECORD_CONFIRMED,
            [timezone.now(), customers, [totals[c][0] for c in customers], [totals[c][1] for c in customers]],
        )


def _assessments_since(customer_id: str, since: datetime) -> int:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(_COUNT_RECENT, [customer_id, since])
        (count,) = cursor.fetchone()
    return int(count)
