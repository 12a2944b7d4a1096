from __future__ import annotations

from django.contrib import admin

from orders.models import ApiClient, IdempotencyRecord, Order, OrderHistory, OrderLine, OrdersOutbox


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ("sku", "quantity", "unit_price_minor")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class OrderHistoryInline(admin.TabularInline):
    model = OrderHistory
    extra = 0
    can_delete = False
    readonly_fields = ("created_at", "from_state", "to_state", "reason", "actor", "correlation_id")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "state", "region", "customer_id", "currency", "total_minor", "created_at", "updated_at")
    list_filter = ("state", "region", "currency")
    search_fields = ("=id", "customer_id")
    date_hierarchy = "created_at"
    inlines = [OrderLineInline, OrderHistoryInline]
    readonly_fields = (
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

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name",)
    readonly_fields = ("id", "token_sha256", "created_at")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ("key", "client_id", "order_id", "response_status", "created_at")
    search_fields = ("key", "=order__id")
    readonly_fields = [f.name for f in IdempotencyRecord._meta.fields]


@admin.register(OrdersOutbox)
class OrdersOutboxAdmin(admin.ModelAdmin):
    list_display = ("message_type", "aggregate_id", "sequence", "region", "created_at", "published_at")
    list_filter = ("message_type", "region", ("published_at", admin.EmptyFieldListFilter))
    search_fields = ("aggregate_id", "=id", "correlation_id")
    readonly_fields = [f.name for f in OrdersOutbox._meta.fields]
