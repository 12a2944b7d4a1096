"""An order's risk is assessed once, in one statement that also reads the customer's recent orders."""

from __future__ import annotations

import uuid

from django.db import router
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud import rules
from fraud.api import assess_order
from fraud.contracts import Decision
from fraud.models import Assessment
from tests.statements import statements_sent

ALIAS = router.db_for_write(Assessment)


def _assess(order_id: uuid.UUID, *, customer: str = "c-1", amount: int = 1_000, country: str = "DE"):  # type: ignore[no-untyped-def]
    return assess_order(
        order_id=order_id,
        customer_id=customer,
        amount_minor=amount,
        currency="EUR",
        region="eu",
        shipping_country=country,
    )


def test_an_assessment_is_read_and_recorded_in_one_statement() -> None:
    order_id = uuid.uuid4()
    with statements_sent(ALIAS) as sent:
        risk = _assess(order_id, amount=300_000, country="US")

    assert len(sent) == 1
    assert (risk.score, risk.decision, risk.reasons) == (
        60,
        Decision.REVIEW,
        ["large_amount", "country_outside_region"],
    )
    stored = Assessment.objects.get(order_id=order_id)
    assert (stored.score, stored.decision, stored.reasons) == (60, "review", ["large_amount", "country_outside_region"])


def test_the_customer_at_the_velocity_limit_is_scored_as_busy() -> None:
    for _ in range(rules.HIGH_VELOCITY_AT):
        assert _assess(uuid.uuid4(), customer="busy").decision == Decision.APPROVE
    order_id = uuid.uuid4()

    risk = _assess(order_id, customer="busy")

    assert (risk.score, risk.decision, risk.reasons) == (50, Decision.REVIEW, ["high_velocity"])
    assert Assessment.objects.get(order_id=order_id).reasons == ["high_velocity"]


def test_a_repeated_assessment_answers_as_the_first_did() -> None:
    order_id = uuid.uuid4()
    first = _assess(order_id)

    again = _assess(order_id, amount=2_000_000, country="US")  # other facts: the first assessment stands

    assert again == first
    assert Assessment.objects.filter(order_id=order_id).count() == 1


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(min_value=0, max_value=3_000_000),
    country=st.sampled_from(["DE", "FR", "US", "JP"]),
    recent=st.integers(min_value=0, max_value=10 * rules.HIGH_VELOCITY_AT),
)
def test_the_rules_read_the_recent_orders_only_against_the_velocity_limit(
    amount: int, country: str, recent: int
) -> None:
    """What lets the statement choose between two outcomes scored beforehand."""
    facts = rules.Facts(amount_minor=amount, region="eu", shipping_country=country, recent_orders_of_customer=recent)
    calm, busy = rules.outcomes(amount_minor=amount, region="eu", shipping_country=country)

    assert rules.outcome(facts) == (busy if recent >= rules.HIGH_VELOCITY_AT else calm)
