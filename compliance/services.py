from __future__ import annotations

import uuid

from django.conf import settings

from compliance.contracts import DestinationDenied
from compliance.models import Screening, TaxAssessment
from messaging.api import create_once


def screening_create(*, order_id: uuid.UUID, region: str, shipping_country: str) -> Screening:
    """Screen an order's destination once; a repeated call gives the first verdict."""
    country = shipping_country.upper()
    denied = country in {c.upper() for c in settings.COMPLIANCE_DENIED_COUNTRIES}
    screening, _ = create_once(
        Screening,
        order_id=order_id,
        defaults={
            "region": region,
            "shipping_country": country,
            "passed": not denied,
            "reason": "destination on the deny-list" if denied else "",
        },
    )
    if not screening.passed:
        raise DestinationDenied(screening.shipping_country)
    return screening


def tax_assess(*, order_id: uuid.UUID, region: str, taxable_minor: int, currency: str) -> TaxAssessment:
    rate_bp = int(settings.TAX_RATES_BP[region])
    # Round half up, in minor units.
    tax_minor = (taxable_minor * rate_bp + 5_000) // 10_000
    assessment, _ = create_once(
        TaxAssessment,
        order_id=order_id,
        defaults={
            "region": region,
            "rate_bp": rate_bp,
            "taxable_minor": taxable_minor,
            "tax_minor": tax_minor,
            "currency": currency,
        },
    )
    return assessment
