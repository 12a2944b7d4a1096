from django.contrib import admin

from inventory.models import Reservation, StockItem
from inventory.services import stock_set


@admin.register(StockItem)
class StockItemAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "policy", "on_hand", "reserved", "available", "sold", "updated_at")
    list_filter = ("policy",)
    search_fields = ("sku", "name")
    readonly_fields = ("reserved", "sold", "updated_at")

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        # Through the service: it locks the row, so a concurrent reservation's
        # change to ``reserved`` is never overwritten by this form.
        stock_set(sku=obj.sku, on_hand=obj.on_hand, policy=obj.policy, name=obj.name, prices=obj.prices)

    @admin.display(description="available")
    def available(self, obj: StockItem) -> int:
        return obj.available


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ("order_id", "sku", "quantity", "policy", "status", "expires_at", "created_at")
    list_filter = ("status", "policy")
    search_fields = ("order_id", "sku")
    readonly_fields = [f.name for f in Reservation._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
