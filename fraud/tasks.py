"""Fraud's consumers (non-critical path: may lag or pause under load)."""

from __future__ import annotations

from fraud.models import FraudInbox
from fraud.services import customer_profiles_record_confirmed
from messaging.api import Envelope, batch_consumer

# Orders' event, subscribed to by name: participants never import orders.
ORDER_CONFIRMED = "orders.OrderConfirmed"


@batch_consumer(message_type=ORDER_CONFIRMED, name="fraud.record_confirmed_order", queue="events", inbox=FraudInbox)
def record_confirmed_orders(envelopes: list[Envelope]) -> None:
    customer_profiles_record_confirmed(
        confirmations=[
            (envelope.payload["customer_id"], int(envelope.payload["total_minor"])) for envelope in envelopes
        ]
    )
