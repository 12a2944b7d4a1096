from django.contrib import admin

from fraud.models import Assessment, CustomerProfile


@admin.register(Assessment)
class AssessmentAdmin(admin.ModelAdmin):
    list_display = (
        "order_id",
        "customer_id",
        "amount_minor",
        "currency",
        "region",
        "shipping_country",
        "score",
        "decision",
        "created_at",
    )
    list_filter = ("decision", "region")
    search_fields = ("order_id", "customer_id")
    readonly_fields = [f.name for f in Assessment._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


@admin.register(CustomerProfile)
class CustomerProfileAdmin(admin.ModelAdmin):
    list_display = ("customer_id", "confirmed_orders", "confirmed_amount_minor", "last_confirmed_at")
    search_fields = ("customer_id",)
    readonly_fields = ("customer_id", "confirmed_orders", "confirmed_amount_minor", "last_confirmed_at")
