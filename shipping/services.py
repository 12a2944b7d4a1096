from __future__ import annotations

import uuid

from messaging.api import atomic_on, call_adapter, create_once, outbox_append, rows_where
from shipping.carrier import carrier
from shipping.contracts import FULFILMENT_EVENTS, FulfilmentOutOfOrder, ShipmentAlreadyShipped, UnknownShipment
from shipping.models import Shipment, ShipmentStatus, ShippingOutbox

atomic = atomic_on("shipping")


def shipment_create(*, order_id: uuid.UUID, region: str, country: str, first_call: bool = False) -> Shipment:
    """One shipment per order; a repeated call returns it, without calling the carrier. With ``first_call``
    (the caller knows no call came before) the shipment is not looked for first: one statement less. Were the
    caller wrong, nothing is doubled: the carrier answers the key's first call again, and the first shipment
    written stays the only one."""
    existing = [] if first_call else rows_where(Shipment, order_id=order_id)
    if existing:
        return existing[0]
    label = call_adapter(
        "carrier",
        "create_label",
        lambda: carrier().create_label(idempotency_key=f"{order_id}:shipment", country=country),
    )
    shipment, _ = create_once(
        Shipment,
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
    """Cancel an order's label before it ships; refuse once it has shipped."""
    shipment = Shipment.objects.filter(order_id=order_id).first()
    if shipment is None or shipment.status == ShipmentStatus.CANCELLED:
        return False
    if shipment.status != ShipmentStatus.CREATED:
        raise ShipmentAlreadyShipped(shipment.tracking_number)
    call_adapter(
        "carrier",
        "cancel_label",
        lambda: carrier().cancel_label(
            idempotency_key=f"{order_id}:shipment-cancel", tracking_number=shipment.tracking_number
        ),
    )
    with atomic():
        cancelled = Shipment.objects.filter(pk=shipment.pk, status=ShipmentStatus.CREATED).update(
            status=ShipmentStatus.CANCELLED
        )
    if not cancelled:
        raise ShipmentAlreadyShipped(shipment.tracking_number)
    return True


_NEXT = {
    "shipped": (ShipmentStatus.CREATED, ShipmentStatus.SHIPPED),
    "delivered": (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED),
}


def shipment_record_event(*, shipment_id: uuid.UUID, event: str) -> Shipment:
    """Record a fulfilment event from the carrier (or staff) and announce it.

    Repeating an event already recorded changes nothing.
    """
    if event not in _NEXT:
        raise ValueError(f"unknown fulfilment event {event!r}")
    before, after = _NEXT[event]
    with atomic():
        shipment = Shipment.objects.select_for_update().filter(pk=shipment_id).first()
        if shipment is None:
            raise UnknownShipment(str(shipment_id))
        if shipment.status == after:
            return shipment
        if shipment.status != before:
            raise FulfilmentOutOfOrder(shipment.status, event)
        shipment.status = after
        shipment.save(update_fields=["status", "updated_at"])
        outbox_append(
            model=ShippingOutbox,
            message_type=FULFILMENT_EVENTS[event],
            aggregate_id=str(shipment.order_id),
            sequence=2 if event == "shipped" else 3,
            region=shipment.region,
            correlation_id=str(shipment.order_id),
            payload={
                "order_id": str(shipment.order_id),
                "shipment_id": str(shipment.id),
                "tracking_number": shipment.tracking_number,
            },
        )
    return shipment
