from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, router

from compliance.contracts import DestinationDenied
from compliance.models import Screening, TaxAssessment
from messaging.api import claim_then_insert, create_once

ALIAS = router.db_for_write(Screening)


def clearance_create(
    *, order_id: uuid.UUID, region: str, shipping_country: str, taxable_minor: int, currency: str
) -> TaxAssessment:
    """Screen an order's destination and assess its tax, once each; a repeated call gives the first verdict and
    the first assessment. A first call writes both records in one statement (no round trip and commit of its
    own for the tax), and the assessment it returns carries no primary key. A repeated call, a denied
    destination, or an order screened before the tax was assessed with the screening (its tax not assessed
    yet) takes each record on its own."""
    verdict = _verdict(region=region, shipping_country=shipping_country)
    if verdict["passed"]:
        assessment = TaxAssessment(
            order_id=order_id, **_tax(region=region, taxable_minor=taxable_minor, currency=currency)
        )
        try:
            if claim_then_insert(Screening(order_id=order_id, **verdict), [assessment]):
                return assessment
        except IntegrityError:
            # A tax assessment without its screening, which only a hand-made row can be: the statement wrote
            # nothing, and each record on its own keeps the assessment there is. Inside a transaction the
            # failed statement has spoiled it: let the error say so.
            if connections[ALIAS].in_atomic_block:
                raise
    screening_create(order_id=order_id, region=region, shipping_country=shipping_country)
    return tax_assess(order_id=order_id, region=region, taxable_minor=taxable_minor, currency=currency)


def screening_create(*, order_id: uuid.UUID, region: str, shipping_country: str) -> Screening:
    """Screen an order's destination once; a repeated call gives the first verdict."""
    screening, _ = create_once(
        Screening, order_id=order_id, defaults=_verdict(region=region, shipping_country=shipping_country)
    )
    if not screening.passed:
        raise DestinationDenied(screening.shipping_country)
    return screening


def tax_assess(*, order_id: uuid.UUID, region: str, taxable_minor: int, currency: str) -> TaxAssessment:
    """Assess an order's tax once; a repeated call gives the first assessment."""
    assessment, _ = create_once(
        TaxAssessment, order_id=order_id, defaults=_tax(region=region, taxable_minor=taxable_minor, currency=currency)
    )
    return assessment


def _verdict(*, region: str, shipping_country: str) -> dict[str, Any]:
    country = shipping_country.upper()
    denied = country in {c.upper() for c in settings.COMPLIANCE_DENIED_COUNTRIES}
    return {
        "region": region,
        "shipping_country": country,
        "passed": not denied,
        "reason": "destination on the deny-list" if denied else "",
    }


def _tax(*, region: str, taxable_minor: int, currency: str) -> dict[str, Any]:
    rate_bp = int(settings.TAX_RATES_BP[region])
    return {
        "region": region,
        "rate_bp": rate_bp,
        "taxable_minor": taxable_minor,
        "tax_minor": (taxable_minor * rate_bp + 5_000) // 10_000,  # rounded half up, in minor units
        "currency": currency,
    }
