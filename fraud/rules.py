"""Local risk rules: each adds points and a reason; the total decides.

The customer's recent orders count only through ``HIGH_VELOCITY_AT`` (at or above it, or not), so an
assessment can be scored on both sides of it before the count is read, and the count read in the statement
that records the assessment (``outcomes``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings

from fraud.contracts import Decision

REVIEW_AT = 50
REJECT_AT = 90
HIGH_VELOCITY_AT = 20  # orders of one customer in the velocity window, this one not counted


@dataclass(frozen=True)
class Facts:
    amount_minor: int
    region: str
    shipping_country: str
    recent_orders_of_customer: int


@dataclass(frozen=True)
class Outcome:
    score: int
    decision: Decision
    reasons: list[str]


def score(facts: Facts) -> tuple[int, list[str]]:
    points, reasons = 0, []
    if facts.amount_minor >= 1_000_000:
        points, reasons = points + 60, [*reasons, "very_large_amount"]
    elif facts.amount_minor >= 200_000:
        points, reasons = points + 30, [*reasons, "large_amount"]
    if facts.shipping_country not in settings.REGION_COUNTRIES.get(facts.region, []):
        points, reasons = points + 30, [*reasons, "country_outside_region"]
    if facts.recent_orders_of_customer >= HIGH_VELOCITY_AT:
        points, reasons = points + 50, [*reasons, "high_velocity"]
    return min(points, 100), reasons


def outcome(facts: Facts) -> Outcome:
    points, reasons = score(facts)
    decision = Decision.REJECT if points >= REJECT_AT else Decision.REVIEW if points >= REVIEW_AT else Decision.APPROVE
    return Outcome(score=points, decision=decision, reasons=reasons)


def outcomes(*, amount_minor: int, region: str, shipping_country: str) -> tuple[Outcome, Outcome]:
    """An order's outcome with fewer than ``HIGH_VELOCITY_AT`` recent orders of its customer, and with as many."""
    calm = Facts(
        amount_minor=amount_minor, region=region, shipping_country=shipping_country, recent_orders_of_customer=0
    )
    return outcome(calm), outcome(replace(calm, recent_orders_of_customer=HIGH_VELOCITY_AT))
