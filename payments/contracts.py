"""What payments accepts and answers (v1)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from messaging.contracts import BusinessError, TransientError


class PaymentSummary(BaseModel):
    model_config = ConfigDict(frozen=True)
    order_id: str
    authorization_status: str | None
    authorized_minor: int
    captured_minor: int
    refunded_minor: int
    currency: str | None
    captures: int


class PaymentDeclined(BusinessError):
    def __init__(self, code: str) -> None:
        super().__init__("payment_declined", f"payment declined by the gateway ({code})")


class GatewayUnavailable(TransientError):
    pass
