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


class CapturedAfterVoid(BusinessError):
    """The gateway captured while the authorization was voided here (a cancel, a repair): the capture is
    recorded, so that compensation refunds it, and the step refused."""

    def __init__(self, order_id: str) -> None:
        super().__init__(
            "captured_after_void",
            f"order {order_id}: the gateway captured after the authorization was voided; the capture is recorded "
            "and will be refunded",
        )


class GatewayUnavailable(TransientError):
    pass


class PaymentRecord(BaseModel):
    """Everything payments recorded about one order, its ledger included."""

    model_config = ConfigDict(frozen=True)
    order_id: str
    authorization_status: str | None = None
    authorized_minor: int = 0
    currency: str | None = None
    captures: int = 0
    captured_minor: int = 0
    capture_currencies: tuple[str, ...] = ()
    refunds: int = 0
    refunded_minor: int = 0
    ledger_debit_minor: int = 0
    ledger_credit_minor: int = 0
    # Credited to sales less debited from it: what the ledger says was kept.
    ledger_sales_minor: int = 0
    ledger_currencies: tuple[str, ...] = ()
