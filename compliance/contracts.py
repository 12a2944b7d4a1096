"""What compliance accepts and answers (v1)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from messaging.contracts import BusinessError


class TaxQuote(BaseModel):
    model_config = ConfigDict(frozen=True)
    order_id: str
    region: str
    rate_bp: int
    taxable_minor: int
    tax_minor: int


class DestinationDenied(BusinessError):
    def __init__(self, country: str) -> None:
        super().__init__("destination_denied", f"shipping to {country} is not permitted")
