from django.contrib import admin

from compliance.models import Screening, TaxAssessment


@admin.register(Screening)
class ScreeningAdmin(admin.ModelAdmin):
    list_display = ("order_id", "region", "shipping_country", "passed", "reason", "created_at")
    list_filter = ("passed", "region", "shipping_country")
    search_fields = ("order_id",)
    readonly_fields = [f.name for f in Screening._meta.fields]


@admin.register(TaxAssessment)
class TaxAssessmentAdmin(admin.ModelAdmin):
    list_display = ("order_id", "region", "rate_bp", "taxable_minor", "tax_minor", "currency", "created_at")
    list_filter = ("region", "currency")
    search_fields = ("order_id",)
    readonly_fields = [f.name for f in TaxAssessment._meta.fields]
