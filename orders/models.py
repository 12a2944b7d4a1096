from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition

from messaging.api import InboxMessage, OutboxMessage
from orders.reconciliation.models import Discrepancy, ReconciliationRun  # noqa: F401 - models of this app


class OrderState(models.TextChoices):
    PENDING = "pending", "Pending"
    RESERVING = "reserving", "Reserving"
    ON_HOLD = "on_hold", "On hold (fraud review)"
    RESERVED = "reserved", "Reserved"
    CONFIRMING = "confirming", "Confirming"
    CONFIRMED = "confirmed", "Confirmed"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    COMPENSATING = "compensating", "Compensating"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


S = OrderState
TERMINAL_STATES = frozenset({S.CONFIRMED, S.SHIPPED, S.DELIVERED, S.REJECTED, S.CANCELLED})
# States in which the saga waits for someone else (a person, the carrier).
RESTING_STATES = TERMINAL_STATES | {S.ON_HOLD, S.NEEDS_ATTENTION}


class Region(models.TextChoices):
    EU = "eu", "Europe"
    US = "us", "Americas"
    APAC = "apac", "Asia-Pacific"


RESERVATION_STEPS = ("clear_compliance", "assess_fraud", "reserve_stock", "authorize_payment")
CONFIRMATION_STEPS = ("commit_stock", "capture_payment", "create_shipment")


def _steps_done(*steps: str):  # type: ignore[no-untyped-def]
    def condition(order: Order) -> bool:
        return all(step in order.completed_steps for step in steps)

    condition.__name__ = f"completed_{'_'.join(steps)}"
    return condition


class Order(ConcurrentTransitionMixin, models.Model):
    """The order aggregate. ``state`` changes only through the transitions
    below; a concurrent save from a stale copy raises ConcurrentTransition."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client_id = models.UUIDField(db_index=True)
    customer_id = models.CharField(max_length=64, db_index=True)
    region = models.CharField(max_length=8, choices=Region.choices)
    currency = models.CharField(max_length=3)
    subtotal_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField(default=0)
    payment_token = models.CharField(max_length=128)
    shipping_country = models.CharField(max_length=2)
    shipping_address = models.JSONField(default=dict)
    state = FSMField(default=S.PENDING, choices=OrderState.choices, protected=True, db_index=True)
    completed_steps = models.JSONField(default=list, help_text="Saga steps done, in order.")
    failure_reason = models.TextField(blank=True, default="")
    version = models.PositiveIntegerField(default=0, help_text="Bumped at every save; orders the order's messages.")
    deadline_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [
            ("review_fraud", "Can approve or decline orders held for fraud review"),
            ("intervene_saga", "Can resume, compensate or resolve orders that need attention"),
        ]

    def __str__(self) -> str:
        return f"order {self.id} ({self.state})"

    @property
    def total_minor(self) -> int:
        return self.subtotal_minor + self.tax_minor

    # --- transitions (django-fsm-2); side effects live in the saga, not here.
    @transition(field=state, source=S.PENDING, target=S.RESERVING)
    def start_reserving(self) -> None: ...

    @transition(field=state, source=S.RESERVING, target=S.ON_HOLD)
    def hold_for_review(self) -> None: ...

    @transition(field=state, source=S.ON_HOLD, target=S.RESERVING, permission="orders.review_fraud")
    def approve_review(self) -> None: ...

    @transition(field=state, source=S.RESERVING, target=S.RESERVED, conditions=[_steps_done(*RESERVATION_STEPS)])
    def mark_reserved(self) -> None: ...

    @transition(field=state, source=S.RESERVED, target=S.CONFIRMING)
    def start_confirming(self) -> None: ...

    @transition(field=state, source=S.CONFIRMING, target=S.CONFIRMED, conditions=[_steps_done(*CONFIRMATION_STEPS)])
    def confirm(self) -> None: ...

    @transition(field=state, source=S.CONFIRMED, target=S.SHIPPED)
    def mark_shipped(self) -> None: ...

    @transition(field=state, source=S.SHIPPED, target=S.DELIVERED)
    def mark_delivered(self) -> None: ...

    @transition(
        field=state,
        source=[S.PENDING, S.RESERVING, S.ON_HOLD, S.RESERVED, S.CONFIRMING, S.CONFIRMED],
        target=S.COMPENSATING,
    )
    def start_compensating(self) -> None: ...

    @transition(field=state, source=S.NEEDS_ATTENTION, target=S.COMPENSATING, permission="orders.intervene_saga")
    def retry_compensation(self) -> None: ...

    @transition(field=state, source=S.COMPENSATING, target=S.REJECTED)
    def reject(self) -> None: ...

    @transition(field=state, source=S.COMPENSATING, target=S.CANCELLED)
    def mark_cancelled(self) -> None: ...

    @transition(field=state, source=S.COMPENSATING, target=S.NEEDS_ATTENTION)
    def escalate(self) -> None: ...

    @transition(
        field=state,
        source=S.NEEDS_ATTENTION,
        target=RETURN_VALUE(S.REJECTED, S.CANCELLED),
        permission="orders.intervene_saga",
    )
    def mark_resolved(self) -> str:
        """A person settled the order by hand; it ends as what it was becoming."""
        return S.CANCELLED if self.failure_reason.startswith("cancelled") else S.REJECTED


class FraudReview(Order):
    """Orders waiting for a person to approve or decline them (the review queue)."""

    class Meta:
        proxy = True
        verbose_name = "fraud review"


class OrderNeedingAttention(Order):
    """Orders whose compensation could not finish by itself."""

    class Meta:
        proxy = True
        verbose_name = "order needing attention"
        verbose_name_plural = "orders needing attention"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()
    unit_price_minor = models.BigIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

    @property
    def line_total_minor(self) -> int:
        return self.quantity * self.unit_price_minor


class OrderHistory(models.Model):
    """Append-only: a database trigger refuses UPDATE and DELETE."""

    order = models.ForeignKey(Order, on_delete=models.DO_NOTHING, related_name="history", db_constraint=True)
    from_state = models.CharField(max_length=20)
    to_state = models.CharField(max_length=20)
    reason = models.TextField(blank=True, default="")
    actor = models.CharField(max_length=150, default="system")
    correlation_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "order history"

    def __str__(self) -> str:
        return f"{self.from_state} → {self.to_state}"


class ClientRole(models.TextChoices):
    MERCHANT = "merchant", "Merchant (places orders)"
    CARRIER = "carrier", "Carrier (reports fulfilment events)"


class ApiClient(models.Model):
    """A REST client. Only the SHA-256 of its bearer token is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    role = models.CharField(max_length=16, choices=ClientRole.choices, default=ClientRole.MERCHANT)
    token_sha256 = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class IdempotencyRecord(models.Model):
    """The first answer to (client, Idempotency-Key), replayed for repeats."""

    client_id = models.UUIDField()
    key = models.CharField(max_length=255)
    request_sha256 = models.CharField(max_length=64)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client_id", "key"], name="idempotency_key_once_per_client")]

    def __str__(self) -> str:
        return self.key


class OrdersOutbox(OutboxMessage):
    class Meta(OutboxMessage.Meta):
        db_table = "orders_outbox"


class OrdersInbox(InboxMessage):
    class Meta(InboxMessage.Meta):
        db_table = "orders_inbox"
