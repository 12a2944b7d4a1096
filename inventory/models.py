from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from messaging.api import InboxMessage, OutboxMessage


class StockPolicy(models.TextChoices):
    STRICT = "strict", "Strict (never oversold)"
    EVENTUAL = "eventual", "Eventual (back-ordered on shortfall)"


class StockItem(models.Model):
    sku = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=200, blank=True, default="")
    policy = models.CharField(max_length=16, choices=StockPolicy.choices, default=StockPolicy.STRICT)
    on_hand = models.IntegerField(default=0, help_text="Units in the warehouse, reserved ones included.")
    reserved = models.IntegerField(default=0, help_text="Units held by orders not yet confirmed.")
    sold = models.IntegerField(default=0, help_text="Units committed to confirmed orders.")
    prices = models.JSONField(default=dict, help_text='Unit price in minor units per currency, e.g. {"EUR": 1999}.')
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(reserved__gte=0), name="stock_reserved_not_negative"),
            models.CheckConstraint(condition=models.Q(sold__gte=0), name="stock_sold_not_negative"),
            # Backstop for the conditional update: a STRICT item is never oversold.
            models.CheckConstraint(
                condition=~models.Q(policy="strict")
                | (models.Q(on_hand__gte=models.F("reserved")) & models.Q(on_hand__gte=0)),
                name="stock_strict_never_oversold",
            ),
        ]

    def __str__(self) -> str:
        return self.sku

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class ReservationStatus(models.TextChoices):
    HELD = "held", "Held"
    COMMITTED = "committed", "Committed"
    RELEASED = "released", "Released"
    RETURNED = "returned", "Returned to stock"


class Reservation(models.Model):
    """A soft lock of ``quantity`` units of ``sku`` for one order, until ``expires_at``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(db_index=True)
    sku = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()
    policy = models.CharField(max_length=16, choices=StockPolicy.choices)
    status = models.CharField(max_length=16, choices=ReservationStatus.choices, default=ReservationStatus.HELD)
    expires_at = models.DateTimeField()
    settled_at = models.DateTimeField(
        null=True, blank=True, help_text="EVENTUAL sales: when the sale was booked against the stock row."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order_id", "sku"], name="reservation_once_per_order_sku")]
        indexes = [
            models.Index(fields=["expires_at"], name="reservation_held_expiry", condition=models.Q(status="held")),
            models.Index(
                fields=["sku"],
                name="reservation_unsettled_sales",
                condition=models.Q(policy="eventual", status="committed", settled_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku} for {self.order_id} ({self.status})"


class InventoryOutbox(OutboxMessage):
    class Meta(OutboxMessage.Meta):
        db_table = "inventory_outbox"


class InventoryInbox(InboxMessage):
    class Meta(InboxMessage.Meta):
        db_table = "inventory_inbox"
