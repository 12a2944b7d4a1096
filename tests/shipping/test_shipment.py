"""One shipment per order, its label bought once."""

from __future__ import annotations

import uuid
from unittest.mock import patch

from shipping.api import create_shipment
from shipping.carrier import FakeCarrier
from shipping.models import Shipment
from tests.statements import statements_sent


def test_a_first_call_is_one_statement_and_a_repeat_answers_from_the_record() -> None:
    order_id = uuid.uuid4()

    with (
        statements_sent("shipping") as sent,
        patch.object(FakeCarrier, "create_label", autospec=True, side_effect=FakeCarrier.create_label) as labels,
    ):
        first = create_shipment(order_id=order_id, region="eu", country="de", first_call=True)
        written = len(sent)
        again = create_shipment(order_id=order_id, region="eu", country="de")

    assert written == 1 and "INSERT" in sent[0]  # no look for a shipment first
    assert len(sent) == 2 and "INSERT" not in sent[1]  # the repeat reads it, and the carrier is not called
    assert labels.call_count == 1
    assert again == first and first.tracking_number.startswith("FCDE")


def test_a_first_call_the_caller_was_wrong_about_doubles_nothing() -> None:
    order_id = uuid.uuid4()
    shipment = create_shipment(order_id=order_id, region="eu", country="de")

    assert create_shipment(order_id=order_id, region="eu", country="de", first_call=True) == shipment
    assert Shipment.objects.filter(order_id=order_id).count() == 1
