from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest

from messaging.api import BusinessError
from orders.models import (
    ApiClient,
    FraudReview,
    IdempotencyRecord,
    Order,
    OrderHistory,
    OrderLine,
    OrderNeedingAttention,
    OrdersOutbox,
    OrderState,
)
from orders.reconciliation import admin as reconciliation_admin  # noqa: F401 - registers its models
from orders.services.interventions import (
    order_force_compensation,
    order_mark_resolved,
    order_retry_compensation,
    order_review_approve,
    order_review_decline,
)


class NoteActionForm(ActionForm):
    note = forms.CharField(required=False, label="Note / reason", widget=forms.TextInput(attrs={"size": 50}))


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ("sku", "quantity", "unit_price_minor")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderHistoryInline(admin.TabularInline):
    model = OrderHistory
    extra = 0
    can_delete = False
    readonly_fields = ("created_at", "from_state", "to_state", "reason", "actor", "correlation_id")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


ORDER_FIELDS = (
    "id",
    "state",
    "client_id",
    "customer_id",
    "region",
    "currency",
    "subtotal_minor",
    "tax_minor",
    "payment_token",
    "shipping_country",
    "shipping_address",
    "completed_steps",
    "failure_reason",
    "version",
    "deadline_at",
    "created_at",
    "updated_at",
)


class OrderAdminBase(admin.ModelAdmin):
    """Orders are read here; their state changes only through the actions,
    which go through the state machine and its permissions."""

    list_display = ("id", "state", "region", "customer_id", "currency", "total_minor", "created_at", "updated_at")
    list_filter = ("state", "region", "currency")
    search_fields = ("=id", "customer_id")
    date_hierarchy = "created_at"
    inlines = [OrderLineInline, OrderHistoryInline]
    readonly_fields = ORDER_FIELDS
    action_form = NoteActionForm

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _apply(self, request: HttpRequest, queryset: QuerySet, verb: str, act: Callable[..., Any]) -> None:
        note = request.POST.get("note", "")
        done = 0
        for order in queryset:
            try:
                act(order_id=order.pk, user=request.user, note=note)
                done += 1
            except BusinessError as exc:
                self.message_user(request, f"{order.pk}: {exc.detail}", messages.WARNING)
        if done:
            self.message_user(request, f"{verb} {done} order(s).", messages.SUCCESS)


@admin.register(Order)
class OrderAdmin(OrderAdminBase):
    actions = ["force_compensation"]

    @admin.action(description="Force compensation (note required)")
    def force_compensation(self, request: HttpRequest, queryset: QuerySet) -> None:
        if not request.POST.get("note", "").strip():
            self.message_user(request, "Say why in the note.", messages.ERROR)
            return
        self._apply(request, queryset, "Compensating", order_force_compensation)


@admin.register(FraudReview)
class FraudReviewAdmin(OrderAdminBase):
    actions = ["approve", "decline"]
    list_filter = ("region", "currency")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(state=OrderState.ON_HOLD)

    @admin.action(description="Approve (the order goes on)")
    def approve(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, "Approved", order_review_approve)

    @admin.action(description="Decline (the order is undone)")
    def decline(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, "Declined", order_review_decline)


@admin.register(OrderNeedingAttention)
class OrderNeedingAttentionAdmin(OrderAdminBase):
    actions = ["resume", "force_compensation", "mark_resolved"]
    list_display = ("id", "state", "region", "failure_reason", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(state=OrderState.NEEDS_ATTENTION)

    @admin.action(description="Resume compensation")
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, "Resumed", order_retry_compensation)

    @admin.action(description="Force compensation (note required)")
    def force_compensation(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, "Compensating", order_force_compensation)

    @admin.action(description="Mark resolved by hand (note required)")
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, "Resolved", order_mark_resolved)


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "role", "is_active", "created_at")
    list_filter = ("role", "is_active")
    search_fields = ("name",)
    readonly_fields = ("id", "token_sha256", "created_at")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ("key", "client_id", "order_id", "response_status", "created_at")
    search_fields = ("key", "=order__id")
    readonly_fields = [f.name for f in IdempotencyRecord._meta.fields]


@admin.register(OrdersOutbox)
class OrdersOutboxAdmin(admin.ModelAdmin):
    # held_at: kept back by the relay while the saga was behind (a non-critical event), not a stalled relay.
    list_display = ("message_type", "aggregate_id", "sequence", "region", "created_at", "held_at", "published_at")
    list_filter = (
        "message_type",
        "region",
        ("published_at", admin.EmptyFieldListFilter),
        ("held_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("aggregate_id", "=id", "correlation_id")
    readonly_fields = [f.name for f in OrdersOutbox._meta.fields]
