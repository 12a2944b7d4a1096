from __future__ import annotations

from django.db import models
from django.utils import timezone

from messaging.api import InboxMessage, OutboxMessage


class Screening(models.Model):
    order_id = models.UUIDField(unique=True)
    region = models.CharField(max_length=8)
    shipping_country = models.CharField(max_length=2)
    passed = models.BooleanField()
    reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.order_id} {'passed' if self.passed else 'denied'}"


class TaxAssessment(models.Model):
    order_id = models.UUIDField(unique=True)
    region = models.CharField(max_length=8)
    rate_bp = models.PositiveIntegerField(help_text="Rate in basis points (2000 = 20%).")
    taxable_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.order_id} {self.tax_minor} {self.currency}"


class ComplianceOutbox(OutboxMessage):
    class Meta(OutboxMessage.Meta):
        db_table = "compliance_outbox"


class ComplianceInbox(InboxMessage):
    class Meta(InboxMessage.Meta):
        db_table = "compliance_inbox"
