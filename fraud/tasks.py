"""Fraud's consumers (non-critical path: may lag or pause under load)."""

from __future__ import annotations

from fraud.models import FraudInbox
from fraud.services import customer_profile_record_confirmed
from messaging.api import Envelope, consumer

# Orders' event, subscribed to by name: participants never import orders.
ORDER_CONFIRMED = "orders.OrderConfirmed"


@consumer(message_type=ORDER_CONFIRMED, name="fraud.record_confirmed_order", queue="events", inbox=FraudInbox)
def record_confirmed_order(envelope: Envelope) -> None:
    customer_profile_record_confirmed(
        customer_id=envelope.payload["customer_id"], amount_minor=int(envelope.payload["total_minor"])
    )
