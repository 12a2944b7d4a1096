"""A capture happens once per order, and a repeated call answers from the record."""

from __future__ import annotations

import uuid
from unittest.mock import patch

import pytest

from payments.api import authorize_payment, capture_payment, refund_payment
from payments.contracts import CapturedAfterVoid, PaymentDeclined
from payments.gateway import FakePaymentGateway
from payments.models import Authorization, AuthorizationStatus, Capture, LedgerEntry, Refund
from tests.statements import statements_sent


def _capture_journals(order_id: uuid.UUID) -> int:
    return LedgerEntry.objects.filter(order_id=order_id, memo="capture").values("journal_id").distinct().count()


def _authorized(token: str = "tok_ok") -> uuid.UUID:
    order_id = uuid.uuid4()
    authorize_payment(order_id=order_id, amount_minor=4_200, currency="EUR", token=token)
    return order_id


def test_a_repeated_capture_is_one_capture_and_one_posting() -> None:
    order_id = _authorized()

    capture_payment(order_id=order_id)
    capture_payment(order_id=order_id)

    assert Capture.objects.filter(order_id=order_id).count() == 1
    assert Authorization.objects.get(order_id=order_id).status == "captured"
    assert _capture_journals(order_id) == 1


def test_a_capture_repeated_after_the_refund_answers_from_the_record() -> None:
    order_id = _authorized()
    capture_payment(order_id=order_id)
    refund_payment(order_id=order_id)
    captured = Capture.objects.get(order_id=order_id)

    capture_payment(order_id=order_id)  # e.g. a saga run that died after its capture, replayed late

    assert list(Capture.objects.filter(order_id=order_id)) == [captured]
    assert Authorization.objects.get(order_id=order_id).status == "refunded"
    assert _capture_journals(order_id) == 1


def test_nothing_is_captured_without_an_open_authorization() -> None:
    declined = uuid.uuid4()
    with pytest.raises(PaymentDeclined):
        authorize_payment(order_id=declined, amount_minor=4_200, currency="EUR", token="tok_declined")

    with pytest.raises(Authorization.DoesNotExist, match="no open authorization"):
        capture_payment(order_id=declined)
    with pytest.raises(Authorization.DoesNotExist, match="no authorization"):
        capture_payment(order_id=uuid.uuid4())
    assert not Capture.objects.filter(order_id=declined).exists()
    assert not LedgerEntry.objects.filter(order_id=declined).exists()


def test_a_capture_the_gateway_made_after_a_void_here_is_recorded_and_refused() -> None:
    order_id = _authorized()
    capture = FakePaymentGateway.capture

    def void_meanwhile(self, **kwargs):  # type: ignore[no-untyped-def]
        Authorization.objects.filter(order_id=order_id).update(status=AuthorizationStatus.VOIDED)
        return capture(self, **kwargs)

    with (
        patch.object(FakePaymentGateway, "capture", void_meanwhile),
        pytest.raises(CapturedAfterVoid, match="will be refunded"),
    ):
        capture_payment(order_id=order_id)

    # The void is not overwritten, and the money the gateway took is on the books, balanced.
    assert Authorization.objects.get(order_id=order_id).status == AuthorizationStatus.VOIDED
    assert Capture.objects.get(order_id=order_id).amount_minor == 4_200
    assert _capture_journals(order_id) == 1
    refund_payment(order_id=order_id)  # what the saga's compensation does next
    assert Refund.objects.get(order_id=order_id).amount_minor == 4_200


def test_the_capture_its_postings_and_the_authorization_are_written_by_one_statement() -> None:
    order_id = _authorized()

    with statements_sent("payments") as sent:
        capture_payment(order_id=order_id)

    writes = [sql for sql in sent if not sql.lstrip().upper().startswith("SELECT")]
    assert len(writes) == 1, writes
    assert Capture.objects.get(order_id=order_id).amount_minor == 4_200
    assert Authorization.objects.get(order_id=order_id).status == AuthorizationStatus.CAPTURED
    debit, credit = LedgerEntry.objects.filter(order_id=order_id, memo="capture").order_by("debit_minor")
    assert (debit.credit_minor, credit.debit_minor) == (4_200, 4_200)
    assert debit.journal_id == credit.journal_id


def test_a_first_call_is_one_statement_and_a_repeat_answers_from_the_record() -> None:
    order_id = uuid.uuid4()

    with (
        statements_sent("payments") as sent,
        patch.object(FakePaymentGateway, "authorize", autospec=True, side_effect=FakePaymentGateway.authorize) as calls,
    ):
        authorize_payment(order_id=order_id, amount_minor=4_200, currency="EUR", token="tok_ok", first_call=True)
        first = len(sent)
        authorize_payment(order_id=order_id, amount_minor=4_200, currency="EUR", token="tok_ok")

    assert first == 1 and "INSERT" in sent[0]  # no look for a record first
    assert len(sent) == 2 and "INSERT" not in sent[1]  # the repeat reads the record, and the gateway is not called
    assert calls.call_count == 1


def test_a_first_call_the_caller_was_wrong_about_doubles_nothing() -> None:
    order_id = _authorized()
    before = Authorization.objects.get(order_id=order_id)

    # A caller that says first when a call came before: the gateway answers its key's first call again, and
    # the record already written stays the only one.
    authorize_payment(order_id=order_id, amount_minor=4_200, currency="EUR", token="tok_ok", first_call=True)

    assert list(Authorization.objects.filter(order_id=order_id).values_list("id", "gateway_reference")) == [
        (before.id, before.gateway_reference)
    ]
    capture_payment(order_id=order_id)
    assert _capture_journals(order_id) == 1
