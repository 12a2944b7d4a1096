from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone


class DiscrepancyKind(models.TextChoices):
    CAPTURE_MISSING = "capture_missing", "Fulfilled order without a capture"
    CAPTURE_MISMATCH = "capture_mismatch", "Capture of the wrong amount, currency or count"
    FULFILLED_ORDER_REFUNDED = "fulfilled_order_refunded", "Fulfilled order refunded"
    LEDGER_UNBALANCED = "ledger_unbalanced", "Ledger debits and credits differ"
    LEDGER_MISMATCH = "ledger_mismatch", "Ledger disagrees with the order and its payments"
    AUTHORIZATION_OPEN = "authorization_open", "Open authorization of an ended order"
    CAPTURE_NOT_REFUNDED = "capture_not_refunded", "Capture of an ended order not refunded"
    REFUND_MISMATCH = "refund_mismatch", "Refund differs from its capture"
    HOLD_OF_ENDED_ORDER = "hold_of_ended_order", "Stock still held for an ended order"
    HOLD_OF_FULFILLED_ORDER = "hold_of_fulfilled_order", "Stock still held (not sold) for a fulfilled order"
    SALE_NOT_RETURNED = "sale_not_returned", "Stock sold to an ended order not returned"
    SALE_NOT_COMMITTED = "sale_not_committed", "Fulfilled order without committed stock"
    EXPIRED_HOLD = "expired_hold", "Expired stock hold not released"
    STOCK_SOLD_MISMATCH = "stock_sold_mismatch", "Stock sold differs from committed reservations"
    STOCK_RESERVED_MISMATCH = "stock_reserved_mismatch", "Stock reserved differs from held reservations"
    SHIPMENT_OF_ENDED_ORDER = "shipment_of_ended_order", "Active shipment of an ended order"
    SHIPMENT_MISSING = "shipment_missing", "Fulfilled order without a shipment"
    SAGA_PAST_DEADLINE = "saga_past_deadline", "Saga past its deadline"
    OUTBOX_STALLED = "outbox_stalled", "Outbox message not published"
    DEAD_LETTER_OPEN = "dead_letter_open", "Open dead letter"


class DiscrepancyStatus(models.TextChoices):
    OPEN = "open", "Open (for a person)"
    REPAIRED = "repaired", "Repaired automatically"
    REPAIR_FAILED = "repair_failed", "Repair failed"
    RESOLVED = "resolved", "Resolved by a person"


UNRESOLVED_STATUSES = (DiscrepancyStatus.OPEN, DiscrepancyStatus.REPAIR_FAILED)


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class RunTrigger(models.TextChoices):
    COMMAND = "command", "Command"
    SCHEDULE = "schedule", "Schedule"


class ReconciliationRun(models.Model):
    """One comparison of every module's records: its scope, counts and totals."""

    trigger = models.CharField(max_length=16, choices=RunTrigger.choices, default=RunTrigger.COMMAND)
    since = models.DateTimeField(null=True, blank=True, help_text="Only orders created since then.")
    region = models.CharField(max_length=8, blank=True, default="")
    fix = models.BooleanField(default=False, help_text="Whether safe repairs were applied.")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    orders_checked = models.PositiveIntegerField(default=0)
    found = models.PositiveIntegerField(default=0)
    repaired = models.PositiveIntegerField(default=0)
    unresolved = models.PositiveIntegerField(default=0)
    totals = models.JSONField(default=dict, blank=True, help_text="Per currency: what each module recorded.")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"reconciliation #{self.pk} ({self.status})"


class Discrepancy(models.Model):
    """Something two modules (or a module and its own counters) disagree about."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="discrepancies")
    kind = models.CharField(max_length=32, choices=DiscrepancyKind.choices)
    status = models.CharField(max_length=16, choices=DiscrepancyStatus.choices, default=DiscrepancyStatus.OPEN)
    order_id = models.UUIDField(null=True, blank=True, db_index=True)
    modules = ArrayField(models.CharField(max_length=32), default=list)
    sku = models.CharField(max_length=64, blank=True, default="")
    reference = models.CharField(max_length=64, blank=True, default="", help_text="Message or dead letter id.")
    unit = models.CharField(max_length=8, blank=True, default="", help_text="Currency, 'units' or 'seconds'.")
    expected = models.BigIntegerField(null=True, blank=True)
    actual = models.BigIntegerField(null=True, blank=True)
    summary = models.TextField()
    suggested_repair = models.TextField(blank=True, default="")
    repair = models.CharField(max_length=32, blank=True, default="", help_text="Automatic repair; empty: a person.")
    outcome = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_by = models.CharField(max_length=150, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-run_id", "kind", "id"]
        verbose_name_plural = "discrepancies"
        indexes = [
            models.Index(fields=["run", "kind"], name="discrepancy_run_kind"),
            models.Index(fields=["status", "kind"], name="discrepancy_status_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.order_id or self.sku or self.reference}"
