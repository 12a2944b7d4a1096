"""Compliance's face to other modules."""

from __future__ import annotations

import uuid

from compliance import services
from compliance.contracts import TaxQuote


def clear_order(
    *, order_id: uuid.UUID, region: str, shipping_country: str, taxable_minor: int, currency: str
) -> TaxQuote:
    """Screen the order's destination (``DestinationDenied`` if it may not go there) and quote its tax; once per
    order, a repeated call answers as the first did."""
    t = services.clearance_create(
        order_id=order_id,
        region=region,
        shipping_country=shipping_country,
        taxable_minor=taxable_minor,
        currency=currency,
    )
    return TaxQuote(
        order_id=str(t.order_id),
        region=t.region,
        rate_bp=t.rate_bp,
        taxable_minor=t.taxable_minor,
        tax_minor=t.tax_minor,
    )
