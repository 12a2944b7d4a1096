from django.contrib import admin

from payments.models import Authorization, Capture, LedgerEntry, Refund


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money records are written by the saga only; people read them."""

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Authorization)
class AuthorizationAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "amount_minor", "currency", "status", "decline_code", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("order_id", "gateway_reference")


@admin.register(Capture)
class CaptureAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "amount_minor", "currency", "gateway_reference", "created_at")
    list_filter = ("currency",)
    search_fields = ("order_id", "gateway_reference")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("order_id", "amount_minor", "currency", "gateway_reference", "created_at")
    search_fields = ("order_id",)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "journal_id",
        "order_id",
        "account",
        "debit_minor",
        "credit_minor",
        "currency",
        "memo",
        "created_at",
    )
    list_filter = ("account", "currency", "memo")
    search_fields = ("order_id", "journal_id")
