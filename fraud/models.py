from __future__ import annotations

from django.db import models
from django.utils import timezone

from messaging.api import InboxMessage, OutboxMessage


class Assessment(models.Model):
    order_id = models.UUIDField(unique=True)
    customer_id = models.CharField(max_length=64, db_index=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    region = models.CharField(max_length=8)
    shipping_country = models.CharField(max_length=2)
    score = models.PositiveSmallIntegerField()
    decision = models.CharField(max_length=8)
    reasons = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.order_id} {self.decision} ({self.score})"


class CustomerProfile(models.Model):
    """What fraud knows of a customer's confirmed orders (fed by OrderConfirmed)."""

    customer_id = models.CharField(max_length=64, primary_key=True)
    confirmed_orders = models.PositiveIntegerField(default=0)
    confirmed_amount_minor = models.BigIntegerField(default=0)
    last_confirmed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.customer_id


class FraudOutbox(OutboxMessage):
    class Meta(OutboxMessage.Meta):
        db_table = "fraud_outbox"


class FraudInbox(InboxMessage):
    class Meta(InboxMessage.Meta):
        db_table = "fraud_inbox"
