from django.contrib import admin

from shipping.models import Shipment


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = ("tracking_number", "order_id", "region", "country", "carrier", "status", "created_at")
    list_filter = ("status", "region", "carrier")
    search_fields = ("order_id", "tracking_number")
    readonly_fields = [f.name for f in Shipment._meta.fields]
