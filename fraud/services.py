from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.db import connections, router
from django.utils import timezone

from fraud import rules
from fraud.models import Assessment, CustomerProfile

VELOCITY_WINDOW = timedelta(hours=1)
ALIAS = router.db_for_write(CustomerProfile)
# Run for every order and every confirmation: written once, not rebuilt by the ORM on each call.
_ASSESSMENT = Assessment._meta.db_table
_ASSESSMENT_FIELDS = {f.name: f for f in Assessment._meta.concrete_fields}
_ASSESS = (
    f'WITH recent AS (SELECT count(*) >= %(busy_at)s AS busy FROM "{_ASSESSMENT}" '
    'WHERE "customer_id" = %(customer_id)s AND "created_at" >= %(since)s), '
    f'assessed AS (INSERT INTO "{_ASSESSMENT}" ("order_id", "customer_id", "amount_minor", "currency", "region", '
    '"shipping_country", "score", "decision", "reasons", "created_at") '
    "SELECT %(order_id)s, %(customer_id)s, %(amount_minor)s, %(currency)s, %(region)s, %(shipping_country)s, "
    "CASE WHEN busy THEN %(busy_score)s ELSE %(calm_score)s END, "
    "CASE WHEN busy THEN %(busy_decision)s ELSE %(calm_decision)s END, "
    "CASE WHEN busy THEN %(busy_reasons)s::jsonb ELSE %(calm_reasons)s::jsonb END, %(created_at)s FROM recent "
    'ON CONFLICT ("order_id") DO NOTHING RETURNING "id") '
    "SELECT assessed.id, recent.busy FROM assessed, recent"
)
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
    """Score an order once; a repeated call returns the first assessment.

    One statement reads the customer's recent assessments and records this one, scored on whichever side of
    the velocity limit the count falls (both scored beforehand): no round trip of its own for the count."""
    calm, busy = rules.outcomes(amount_minor=amount_minor, region=region, shipping_country=shipping_country)
    facts = {
        "order_id": order_id,
        "customer_id": customer_id,
        "amount_minor": amount_minor,
        "currency": currency,
        "region": region,
        "shipping_country": shipping_country,
        "created_at": timezone.now(),
    }
    connection = connections[ALIAS]
    params = {name: _ASSESSMENT_FIELDS[name].get_db_prep_save(value, connection) for name, value in facts.items()}
    for side, outcome in (("calm", calm), ("busy", busy)):
        params[f"{side}_score"] = outcome.score
        params[f"{side}_decision"] = outcome.decision.value
        params[f"{side}_reasons"] = _ASSESSMENT_FIELDS["reasons"].get_db_prep_save(outcome.reasons, connection)
    params["busy_at"] = rules.HIGH_VELOCITY_AT
    params["since"] = facts["created_at"] - VELOCITY_WINDOW
    with connection.cursor() as cursor:
        cursor.execute(_ASSESS, params)
        row = cursor.fetchone()
    if row is None:  # assessed before: the first assessment stands
        return Assessment.objects.using(ALIAS).get(order_id=order_id)
    pk, was_busy = row
    outcome = busy if was_busy else calm
    assessment = Assessment(
        id=pk, score=outcome.score, decision=outcome.decision.value, reasons=outcome.reasons, **facts
    )
    assessment._state.adding = False
    assessment._state.db = ALIAS
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
