"""What fraud counts per customer: recent assessments for velocity, confirmed orders for the profile."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from fraud.api import assess_order
from fraud.contracts import Decision
from fraud.models import Assessment, CustomerProfile
from fraud.services import customer_profiles_record_confirmed


def _assess(customer_id: str) -> tuple[str, list[str]]:
    risk = assess_order(
        order_id=uuid.uuid4(),
        customer_id=customer_id,
        amount_minor=1_000,
        currency="EUR",
        region="eu",
        shipping_country="DE",
    )
    return risk.decision, list(risk.reasons)


def test_twenty_orders_of_one_customer_within_the_hour_put_the_next_under_review() -> None:
    for _ in range(19):
        assert _assess("busy") == (Decision.APPROVE, [])
    Assessment.objects.filter(customer_id="busy").update(created_at=timezone.now() - timedelta(minutes=59))
    _assess("other")  # other customers do not count

    assert _assess("busy") == (Decision.APPROVE, [])  # 19 before it
    assert _assess("busy") == (Decision.REVIEW, ["high_velocity"])  # 20 before it


def test_orders_older_than_the_hour_do_not_count() -> None:
    for _ in range(20):
        _assess("steady")
    Assessment.objects.filter(customer_id="steady").update(created_at=timezone.now() - timedelta(minutes=61))

    assert _assess("steady") == (Decision.APPROVE, [])


def test_confirmed_orders_add_up_per_customer() -> None:
    customer_profiles_record_confirmed(confirmations=[("c-1", 1_500)])
    long_ago = timezone.now() - timedelta(days=30)
    CustomerProfile.objects.filter(customer_id="c-1").update(last_confirmed_at=long_ago)
    customer_profiles_record_confirmed(confirmations=[("c-2", 700), ("c-1", 2_000), ("c-1", 500)])  # one batch

    profiles = {p.customer_id: p for p in CustomerProfile.objects.all()}
    assert (profiles["c-1"].confirmed_orders, profiles["c-1"].confirmed_amount_minor) == (3, 4_000)
    assert (profiles["c-2"].confirmed_orders, profiles["c-2"].confirmed_amount_minor) == (1, 700)
    assert profiles["c-1"].last_confirmed_at > long_ago + timedelta(days=29)  # the later confirmation's time
