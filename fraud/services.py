from __future__ import annotations

import uuid
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from fraud import rules
from fraud.contracts import Decision
from fraud.models import Assessment, CustomerProfile
from messaging.api import create_once

VELOCITY_WINDOW = timedelta(hours=1)


def assessment_create(
    *, order_id: uuid.UUID, customer_id: str, amount_minor: int, currency: str, region: str, shipping_country: str
) -> Assessment:
    """Score an order once; a repeated call returns the first assessment."""
    recent = Assessment.objects.filter(
        customer_id=customer_id, created_at__gte=timezone.now() - VELOCITY_WINDOW
    ).count()
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


def customer_profile_record_confirmed(*, customer_id: str, amount_minor: int) -> None:
    """Count a confirmed order for the customer; call inside the consumer's transaction."""
    updated = CustomerProfile.objects.filter(customer_id=customer_id).update(
        confirmed_orders=F("confirmed_orders") + 1,
        confirmed_amount_minor=F("confirmed_amount_minor") + amount_minor,
        last_confirmed_at=timezone.now(),
    )
    if not updated:
        CustomerProfile.objects.create(
            customer_id=customer_id,
            confirmed_orders=1,
            confirmed_amount_minor=amount_minor,
            last_confirmed_at=timezone.now(),
        )
