"""Reconciliation runs and their discrepancies in the admin (read-only, plus
a person's "resolved by hand")."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from messaging.api import BusinessError
from orders.reconciliation.models import Discrepancy, ReconciliationRun
from orders.reconciliation.runs import discrepancies_resolve


class NoteActionForm(ActionForm):
    note = forms.CharField(required=False, label="Note", widget=forms.TextInput(attrs={"size": 50}))


MODULES = ("orders", "inventory", "payments", "shipping", "messaging", "fraud", "compliance")


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def order_link(order_id: Any) -> SafeString | str:
    if not order_id:
        return "—"
    return format_html('<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[order_id]), order_id)


class ModuleFilter(admin.SimpleListFilter):
    title = "module"
    parameter_name = "module"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(m, m) for m in MODULES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(modules__contains=[self.value()]) if self.value() else queryset


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "started_at",
        "trigger",
        "status",
        "since",
        "region",
        "fix",
        "orders_checked",
        "found",
        "repaired",
        "unresolved",
        "discrepancies_link",
    )
    list_filter = ("status", "trigger", "fix", "region")
    date_hierarchy = "started_at"
    fields = (
        "id",
        "trigger",
        "status",
        "since",
        "region",
        "fix",
        "started_at",
        "finished_at",
        "orders_checked",
        "found",
        "repaired",
        "unresolved",
        "discrepancies_link",
        "summary",
        "money_totals",
        "error",
    )
    readonly_fields = fields

    @admin.display(description="discrepancies")
    def discrepancies_link(self, run: ReconciliationRun) -> SafeString:
        url = reverse("admin:orders_discrepancy_changelist") + f"?run__id__exact={run.pk}"
        return format_html('<a href="{}">{} found, {} unresolved</a>', url, run.found, run.unresolved)

    @admin.display(description="by kind")
    def summary(self, run: ReconciliationRun) -> SafeString:
        changelist = reverse("admin:orders_discrepancy_changelist")
        rows = (
            (f"{changelist}?run__id__exact={run.pk}&kind__exact={kind}", kind, count)
            for kind, count in sorted(
                (k, run.discrepancies.filter(kind=k).count())
                for k in run.discrepancies.values_list("kind", flat=True).distinct()
            )
        )
        return format_html(
            "<table><tr><th>kind</th><th>found</th></tr>{}</table>",
            format_html_join("", '<tr><td><a href="{}">{}</a></td><td>{}</td></tr>', rows),
        )

    @admin.display(description="totals per currency")
    def money_totals(self, run: ReconciliationRun) -> SafeString:
        currencies = (run.totals or {}).get("currencies", {})
        rows = (
            (
                code,
                t["orders"],
                t["fulfilled_minor"],
                t["net_captured_minor"],
                t["ledger_sales_minor"],
            )
            for code, t in currencies.items()
        )
        return format_html(
            "<table><tr><th>currency</th><th>orders</th><th>fulfilled orders' totals</th>"
            "<th>captured less refunded</th><th>ledger sales</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "run_link", "kind", "status", "order", "modules", "sku", "expected", "actual", "unit")
    list_filter = ("kind", "status", ModuleFilter, "repair", "run__trigger")
    list_select_related = ("run",)
    search_fields = ("=order_id", "sku", "reference", "summary")
    fields = (
        "run_link",
        "kind",
        "status",
        "order",
        "modules",
        "sku",
        "reference",
        "unit",
        "expected",
        "actual",
        "summary",
        "suggested_repair",
        "repair",
        "outcome",
        "details",
        "created_at",
        "resolved_by",
        "resolved_at",
    )
    readonly_fields = fields
    actions = ["mark_resolved"]
    action_form = NoteActionForm

    def has_intervene_saga_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.intervene_saga")

    @admin.display(description="run", ordering="run_id")
    def run_link(self, d: Discrepancy) -> SafeString:
        url = reverse("admin:orders_reconciliationrun_change", args=[d.run_id])
        return format_html('<a href="{}">#{}</a>', url, d.run_id)

    @admin.display(description="order", ordering="order_id")
    def order(self, d: Discrepancy) -> SafeString | str:
        return order_link(d.order_id)

    @admin.action(description="Mark resolved by hand (note required)", permissions=["intervene_saga"])
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet) -> None:
        try:
            done = discrepancies_resolve(
                discrepancy_ids=list(queryset.values_list("pk", flat=True)),
                actor=f"staff:{request.user.get_username()}",
                note=request.POST.get("note", ""),
            )
        except BusinessError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return
        self.message_user(request, f"Resolved {done} discrepancy(ies).", messages.SUCCESS)
