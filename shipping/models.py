from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from messaging.api import InboxMessage, OutboxMessage


class ShipmentStatus(models.TextChoices):
    CREATED = "created", "Created"
    CANCELLED = "cancelled", "Cancelled"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"


class Shipment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(unique=True)
    region = models.CharField(max_length=8)
    country = models.CharField(max_length=2)
    carrier = models.CharField(max_length=32)
    tracking_number = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=ShipmentStatus.choices, default=ShipmentStatus.CREATED)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tracking_number} ({self.status})"


class ShippingOutbox(OutboxMessage):
    class Meta(OutboxMessage.Meta):
        db_table = "shipping_outbox"


class ShippingInbox(InboxMessage):
    class Meta(InboxMessage.Meta):
        db_table = "shipping_inbox"
