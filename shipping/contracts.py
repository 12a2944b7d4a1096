"""What shipping accepts and answers (v1)."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict

from messaging.contracts import BusinessError, TransientError

# Events (v1). Payload: {"order_id": str, "shipment_id": str, "tracking_number": str}.
SHIPMENT_SHIPPED: Final = "shipping.ShipmentShipped"
SHIPMENT_DELIVERED: Final = "shipping.ShipmentDelivered"
FULFILMENT_EVENTS: Final = {"shipped": SHIPMENT_SHIPPED, "delivered": SHIPMENT_DELIVERED}


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


class ShipmentAlreadyShipped(BusinessError):
    def __init__(self, tracking_number: str) -> None:
        super().__init__("already_shipped", f"shipment {tracking_number} has left the warehouse")


class UnknownShipment(BusinessError):
    http_status = 404

    def __init__(self, shipment_id: str) -> None:
        super().__init__("unknown_shipment", f"no shipment {shipment_id}")


class FulfilmentOutOfOrder(BusinessError):
    http_status = 409

    def __init__(self, status: str, event: str) -> None:
        super().__init__("fulfilment_out_of_order", f"a {status} shipment cannot become {event}")
