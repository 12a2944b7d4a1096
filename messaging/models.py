"""Kernel tables. Outbox and inbox are abstract: every module has its own,
in its own schema, written in the same transaction as its state change."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message_type = models.CharField(max_length=100)
    version = models.PositiveSmallIntegerField(default=1)
    aggregate_id = models.CharField(max_length=64, db_index=True)
    sequence = models.PositiveIntegerField()
    correlation_id = models.CharField(max_length=64)
    causation_id = models.CharField(max_length=64, blank=True, default="")
    region = models.CharField(max_length=8, blank=True, default="")
    payload = models.JSONField(default=dict)
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    # Set when the relay held the row back under load (its consumers are all non-critical, DESIGN.md §5): it
    # stays here, durable, and goes out once the saga has caught up. Kept after publishing, as a record.
    held_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["created_at"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="%(app_label)s_outbox_due",
                condition=models.Q(published_at__isnull=True, held_at__isnull=True),
            ),
            models.Index(
                fields=["created_at"],
                name="%(app_label)s_outbox_held",
                condition=models.Q(published_at__isnull=True, held_at__isnull=False),
            ),
            models.Index(fields=["published_at"], name="%(app_label)s_outbox_published"),
        ]

    def __str__(self) -> str:
        return f"{self.message_type} {self.aggregate_id}#{self.sequence}"


class InboxMessage(models.Model):
    message_id = models.UUIDField()
    consumer = models.CharField(max_length=150)
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(fields=["message_id", "consumer"], name="%(app_label)s_inbox_once"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} {self.message_id}"


class DeadLetterStatus(models.TextChoices):
    OPEN = "open", "Open"
    RETRIED = "retried", "Retried"
    RESOLVED = "resolved", "Resolved"
    DISCARDED = "discarded", "Discarded"


class DeadLetter(models.Model):
    """A message a consumer gave up on; a person decides what happens next."""

    message_id = models.UUIDField()
    message_type = models.CharField(max_length=100)
    module = models.CharField(max_length=32, help_text="Module whose outbox sent the message.")
    consumer = models.CharField(max_length=150)
    queue = models.CharField(max_length=64)
    order_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    envelope = models.JSONField()
    error_type = models.CharField(max_length=200)
    error_message = models.TextField()
    traceback = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField(default=timezone.now)
    last_failed_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=DeadLetterStatus.choices, default=DeadLetterStatus.OPEN)
    status_changed_by = models.CharField(max_length=150, blank=True, default="")
    status_reason = models.TextField(blank=True, default="")
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_failed_at"]
        constraints = [
            models.UniqueConstraint(fields=["message_id", "consumer"], name="dead_letter_once_per_consumer"),
        ]
        indexes = [models.Index(fields=["status", "module"], name="dead_letter_status_module")]

    def __str__(self) -> str:
        return f"{self.message_type} → {self.consumer} ({self.status})"


class DeadLetterAction(models.Model):
    """Append-only record of what a person (or the system) did to a dead letter."""

    dead_letter = models.ForeignKey(DeadLetter, on_delete=models.PROTECT, related_name="actions")
    action = models.CharField(max_length=32)
    actor = models.CharField(max_length=150)
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor}"


class RelayHeartbeat(models.Model):
    """Each running relay stamps its row; /readyz reports the freshest."""

    relay_id = models.CharField(max_length=128, primary_key=True)
    beat_at = models.DateTimeField(default=timezone.now)
    published_total = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return self.relay_id


class KernelOutbox(OutboxMessage):
    """The kernel's own outbox (operational and benchmark messages)."""

    class Meta(OutboxMessage.Meta):
        db_table = "messaging_outbox"
