from __future__ import annotations

import uuid

from shipping.contracts import ShipmentInfo
from shipping.models import Shipment


def shipment_of(*, order_id: uuid.UUID) -> ShipmentInfo | None:
    s = Shipment.objects.filter(order_id=order_id).first()
    if s is None:
        return None
    return ShipmentInfo(
        shipment_id=str(s.id),
        order_id=str(s.order_id),
        status=s.status,
        carrier=s.carrier,
        tracking_number=s.tracking_number,
    )
