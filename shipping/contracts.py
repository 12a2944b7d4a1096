"""What shipping accepts and answers (v1)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from messaging.contracts import BusinessError, TransientError


class ShipmentInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    shipment_id: str
    order_id: str
    status: str
    carrier: str
    tracking_number: str


class DestinationUnserviceable(BusinessError):
    def __init__(self, country: str) -> None:
        super().__init__("destination_unserviceable", f"no carrier serves {country}")


class CarrierUnavailable(TransientError):
    pass
