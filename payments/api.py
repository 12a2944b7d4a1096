"""Payments' face to other modules."""

from __future__ import annotations

import uuid

from payments import selectors, services
from payments.contracts import PaymentRecord, PaymentSummary


def authorize_payment(
    *, order_id: uuid.UUID, amount_minor: int, currency: str, token: str, first_call: bool = False
) -> None:
    """Authorize the order's amount once. ``first_call``: the caller knows this is the first call for the
    order (a saga's first run), so its record is not looked for before the gateway is called."""
    services.authorization_create(
        order_id=order_id, amount_minor=amount_minor, currency=currency, token=token, first_call=first_call
    )


def capture_payment(*, order_id: uuid.UUID) -> None:
    services.capture_create(order_id=order_id)


def void_payment(*, order_id: uuid.UUID) -> None:
    services.authorization_void(order_id=order_id)


def refund_payment(*, order_id: uuid.UUID) -> None:
    services.capture_refund(order_id=order_id)


def get_payment_summary(*, order_id: uuid.UUID) -> PaymentSummary:
    return selectors.payment_summary(order_id=order_id)


def get_ledger_balance(*, order_id: uuid.UUID | None = None) -> tuple[int, int]:
    return selectors.ledger_balance(order_id=order_id)


def get_payment_records(*, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, PaymentRecord]:
    return selectors.payment_records(order_ids=order_ids)
