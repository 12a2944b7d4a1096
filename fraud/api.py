"""Fraud's face to other modules."""

from __future__ import annotations

import uuid

from fraud import selectors, services
from fraud.contracts import ConfirmedHistory, Decision, RiskAssessment


def assess_order(
    *, order_id: uuid.UUID, customer_id: str, amount_minor: int, currency: str, region: str, shipping_country: str
) -> RiskAssessment:
    a = services.assessment_create(
        order_id=order_id,
        customer_id=customer_id,
        amount_minor=amount_minor,
        currency=currency,
        region=region,
        shipping_country=shipping_country,
    )
    return RiskAssessment(order_id=str(a.order_id), score=a.score, decision=Decision(a.decision), reasons=a.reasons)


def get_confirmed_history() -> ConfirmedHistory:
    """Every customer's history added up: how many confirmed orders fraud has counted, and their amounts."""
    return selectors.confirmed_history()
