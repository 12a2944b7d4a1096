"""Shipping's face to other modules."""

from __future__ import annotations

import uuid

from shipping import selectors, services
from shipping.contracts import ShipmentInfo


def create_shipment(*, order_id: uuid.UUID, region: str, country: str, first_call: bool = False) -> ShipmentInfo:
    """The order's one shipment, its label bought once. ``first_call``: the caller knows this is the first call
    for the order (a saga's first run), so its shipment is not looked for before the carrier is called."""
    shipment = services.shipment_create(order_id=order_id, region=region, country=country, first_call=first_call)
    return selectors.shipment_info(shipment)


def cancel_shipment(*, order_id: uuid.UUID) -> None:
    services.shipment_cancel(order_id=order_id)


def get_shipment(*, order_id: uuid.UUID) -> ShipmentInfo | None:
    return selectors.shipment_of(order_id=order_id)


def record_fulfilment_event(*, shipment_id: uuid.UUID, event: str) -> ShipmentInfo:
    return selectors.shipment_info(services.shipment_record_event(shipment_id=shipment_id, event=event))


def get_shipments(*, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, ShipmentInfo]:
    return selectors.shipments_by_order(order_ids=order_ids)
