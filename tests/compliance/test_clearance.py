"""Compliance clears an order once: the destination's screening and the tax, the first answers kept."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, router, transaction

from compliance.api import clear_order
from compliance.contracts import DestinationDenied
from compliance.models import Screening, TaxAssessment
from tests.statements import statements_sent

ALIAS = router.db_for_write(Screening)


def _clear(order_id: uuid.UUID, *, country: str = "DE", subtotal: int = 10_005, region: str = "eu") -> int:
    quote = clear_order(
        order_id=order_id, region=region, shipping_country=country, taxable_minor=subtotal, currency="EUR"
    )
    return quote.tax_minor


def test_a_first_clearance_writes_the_screening_and_the_tax_in_one_statement() -> None:
    order_id = uuid.uuid4()
    with statements_sent(ALIAS) as sent:
        tax = _clear(order_id)

    assert tax == 2_001  # 20 % of 100.05, rounded half up
    assert len(sent) == 1
    screening = Screening.objects.get(order_id=order_id)
    assert (screening.passed, screening.shipping_country, screening.region) == (True, "DE", "eu")
    assert TaxAssessment.objects.filter(order_id=order_id).values_list(
        "rate_bp", "taxable_minor", "tax_minor"
    ).get() == (
        2_000,
        10_005,
        2_001,
    )


def test_a_repeated_clearance_answers_as_the_first_did() -> None:
    order_id = uuid.uuid4()
    first = _clear(order_id, subtotal=10_000)

    assert _clear(order_id, subtotal=99_999) == first == 2_000  # the first assessment, not a new one
    assert Screening.objects.filter(order_id=order_id).count() == 1
    assert TaxAssessment.objects.filter(order_id=order_id).count() == 1


def test_a_denied_destination_is_refused_and_assessed_no_tax() -> None:
    order_id = uuid.uuid4()
    with pytest.raises(DestinationDenied):
        _clear(order_id, country="kp")

    assert Screening.objects.get(order_id=order_id).passed is False
    assert not TaxAssessment.objects.filter(order_id=order_id).exists()
    with pytest.raises(DestinationDenied):  # and again: the verdict is kept
        _clear(order_id, country="kp")


def test_the_first_verdict_stands_though_the_deny_list_changed(settings) -> None:  # type: ignore[no-untyped-def]
    order_id = uuid.uuid4()
    settings.COMPLIANCE_DENIED_COUNTRIES = ["DE"]
    with pytest.raises(DestinationDenied):
        _clear(order_id)
    settings.COMPLIANCE_DENIED_COUNTRIES = []

    with pytest.raises(DestinationDenied):
        _clear(order_id)
    assert not TaxAssessment.objects.filter(order_id=order_id).exists()


def test_an_order_screened_before_its_tax_was_assessed_gets_its_tax() -> None:
    """An order in flight when screening and tax became one step: screened by the old step, its tax not yet
    assessed."""
    order_id = uuid.uuid4()
    Screening.objects.create(order_id=order_id, region="eu", shipping_country="DE", passed=True)

    assert _clear(order_id, subtotal=5_000) == 1_000
    assert TaxAssessment.objects.get(order_id=order_id).tax_minor == 1_000
    assert Screening.objects.filter(order_id=order_id).count() == 1


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_tax_assessment_found_without_its_screening_is_kept_and_the_order_screened() -> None:
    """Only a hand-made row can be one: the one statement fails on the tax's key, and writes nothing."""
    order_id = uuid.uuid4()
    TaxAssessment.objects.create(
        order_id=order_id, region="eu", rate_bp=2_000, taxable_minor=5_000, tax_minor=1_000, currency="EUR"
    )

    assert _clear(order_id, subtotal=7_000) == 1_000

    assert Screening.objects.get(order_id=order_id).passed is True
    assert TaxAssessment.objects.filter(order_id=order_id).count() == 1


def test_inside_a_transaction_a_tax_assessment_without_its_screening_is_an_error() -> None:
    """The failed statement spoils the transaction: the error is raised, not hidden by the fallback."""
    order_id = uuid.uuid4()
    TaxAssessment.objects.create(
        order_id=order_id, region="eu", rate_bp=2_000, taxable_minor=5_000, tax_minor=1_000, currency="EUR"
    )

    with pytest.raises(IntegrityError), transaction.atomic(using=ALIAS):
        _clear(order_id)
