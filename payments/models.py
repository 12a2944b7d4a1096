from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from messaging.api import InboxMessage, OutboxMessage


class AuthorizationStatus(models.TextChoices):
    AUTHORIZED = "authorized", "Authorized (funds held)"
    DECLINED = "declined", "Declined"
    VOIDED = "voided", "Voided"
    CAPTURED = "captured", "Captured"
    REFUNDED = "refunded", "Refunded"


class Authorization(models.Model):
    """A hold on the customer's funds for one order. The token is the only
    payment data we keep: card data never enters the system."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(unique=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    payment_token = models.CharField(max_length=128)
    status = models.CharField(max_length=16, choices=AuthorizationStatus.choices)
    gateway_reference = models.CharField(max_length=128, blank=True, default="")
    decline_code = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.order_id} {self.amount_minor} {self.currency} ({self.status})"


class Capture(models.Model):
    """Money taken. The unique order id makes a second capture impossible."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(unique=True)
    authorization = models.OneToOneField(Authorization, on_delete=models.PROTECT, related_name="capture")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    gateway_reference = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"capture {self.order_id} {self.amount_minor} {self.currency}"


class Refund(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(unique=True)
    capture = models.OneToOneField(Capture, on_delete=models.PROTECT, related_name="refund")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    gateway_reference = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"refund {self.order_id} {self.amount_minor} {self.currency}"


class LedgerAccount(models.TextChoices):
    GATEWAY_CLEARING = "gateway_clearing", "Gateway clearing (asset)"
    SALES = "sales", "Sales (revenue)"


class LedgerEntry(models.Model):
    """Double entry: every movement has equal debits and credits per ``journal_id``."""

    id = models.BigAutoField(primary_key=True)
    journal_id = models.UUIDField(db_index=True)
    order_id = models.UUIDField(db_index=True)
    account = models.CharField(max_length=32, choices=LedgerAccount.choices)
    debit_minor = models.BigIntegerField(default=0)
    credit_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    memo = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(debit_minor__gt=0, credit_minor=0) | models.Q(debit_minor=0, credit_minor__gt=0)),
                name="ledger_one_sided_positive",
            )
        ]

    def __str__(self) -> str:
        return f"{self.account} D{self.debit_minor} C{self.credit_minor} {self.currency}"


class PaymentsOutbox(OutboxMessage):
    class Meta(OutboxMessage.Meta):
        db_table = "payments_outbox"


class PaymentsInbox(InboxMessage):
    class Meta(InboxMessage.Meta):
        db_table = "payments_inbox"
