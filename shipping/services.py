from __future__ import annotations

import uuid

from messaging.api import atomic_on
from shipping.carrier import carrier
from shipping.models import Shipment, ShipmentStatus

atomic = atomic_on("shipping")


def shipment_create(*, order_id: uuid.UUID, region: str, country: str) -> Shipment:
    """One shipment per order; a repeated call returns it."""
    existing = Shipment.objects.filter(order_id=order_id).first()
    if existing is not None:
        return existing
    label = carrier().create_label(idempotency_key=f"{order_id}:shipment", country=country)
    with atomic():
        shipment, _ = Shipment.objects.get_or_create(
            order_id=order_id,
            defaults={
                "region": region,
                "country": country.upper(),
                "carrier": label.carrier,
                "tracking_number": label.tracking_number,
            },
        )
    return shipment


def shipment_cancel(*, order_id: uuid.UUID) -> bool:
    shipment = Shipment.objects.filter(order_id=order_id, status=ShipmentStatus.CREATED).first()
    if shipment is None:
        return False
    carrier().cancel_label(idempotency_key=f"{order_id}:shipment-cancel", tracking_number=shipment.tracking_number)
    with atomic():
        return bool(
            Shipment.objects.filter(pk=shipment.pk, status=ShipmentStatus.CREATED).update(
                status=ShipmentStatus.CANCELLED
            )
        )
