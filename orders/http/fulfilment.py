"""Carrier (or staff) reports of parcels leaving and arriving."""

from __future__ import annotations

import uuid
from typing import Literal

from django.http import HttpRequest
from ninja import Router, Status
from pydantic import BaseModel

from orders.http.auth import ClientToken, StaffSession
from orders.http.schemas import ErrorOut
from orders.models import ClientRole
from shipping.api import record_fulfilment_event

router = Router(tags=["shipping"], auth=[ClientToken(frozenset({ClientRole.CARRIER})), StaffSession()])


class FulfilmentEventIn(BaseModel):
    event: Literal["shipped", "delivered"]


class ShipmentOut(BaseModel):
    shipment_id: str
    order_id: str
    status: str
    carrier: str
    tracking_number: str


@router.post(
    "/{shipment_id}/events",
    response={200: ShipmentOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Record that a shipment shipped or was delivered",
    description="The order follows asynchronously (shipped → delivered). Repeating an event changes nothing.",
)
def post_event(request: HttpRequest, shipment_id: uuid.UUID, payload: FulfilmentEventIn):  # type: ignore[no-untyped-def]
    return Status(200, record_fulfilment_event(shipment_id=shipment_id, event=payload.event).model_dump())
