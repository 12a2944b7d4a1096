from __future__ import annotations

import uuid
from collections.abc import Collection

from shipping.contracts import ShipmentInfo
from shipping.models import Shipment


def shipment_info(s: Shipment) -> ShipmentInfo:
    return ShipmentInfo(
        shipment_id=str(s.id),
        order_id=str(s.order_id),
        status=s.status,
        carrier=s.carrier,
        tracking_number=s.tracking_number,
    )


def shipment_of(*, order_id: uuid.UUID) -> ShipmentInfo | None:
    s = Shipment.objects.filter(order_id=order_id).first()
    return None if s is None else shipment_info(s)


def shipments_by_order(*, order_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, ShipmentInfo]:
    """order id → its shipment (orders without one are left out), in one query."""
    return {s.order_id: shipment_info(s) for s in Shipment.objects.filter(order_id__in=list(order_ids))}
