"""Local risk rules: each adds points and a reason; the total decides."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

REVIEW_AT = 50
REJECT_AT = 90


@dataclass(frozen=True)
class Facts:
    amount_minor: int
    region: str
    shipping_country: str
    recent_orders_of_customer: int


def score(facts: Facts) -> tuple[int, list[str]]:
    points, reasons = 0, []
    if facts.amount_minor >= 1_000_000:
        points, reasons = points + 60, [*reasons, "very_large_amount"]
    elif facts.amount_minor >= 200_000:
        points, reasons = points + 30, [*reasons, "large_amount"]
    if facts.shipping_country not in settings.REGION_COUNTRIES.get(facts.region, []):
        points, reasons = points + 30, [*reasons, "country_outside_region"]
    if facts.recent_orders_of_customer >= 20:
        points, reasons = points + 50, [*reasons, "high_velocity"]
    return min(points, 100), reasons
