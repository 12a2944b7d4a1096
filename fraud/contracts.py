"""What fraud accepts and answers (v1)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from messaging.contracts import BusinessError


class Decision(StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    REJECT = "reject"


class RiskAssessment(BaseModel):
    model_config = ConfigDict(frozen=True)
    order_id: str
    score: int
    decision: Decision
    reasons: list[str]


class ConfirmedHistory(BaseModel):
    """Confirmed orders counted in customers' histories (each ``OrderConfirmed`` once), and their amounts."""

    model_config = ConfigDict(frozen=True)
    orders: int
    amount_minor: int


class FraudRejected(BusinessError):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("fraud_rejected", "rejected by risk assessment: " + ", ".join(reasons))
