"""Dead letters in the admin: find them, read them, decide what happens."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from messaging.dead_letters import (
    DeadLetterNotActionable,
    dead_letter_discard,
    dead_letter_resolve,
    dead_letter_retry,
)
from messaging.models import DeadLetter, DeadLetterAction, RelayHeartbeat

BATCH_RETRY_PER_SECOND = 20


class ReasonActionForm(ActionForm):
    reason = forms.CharField(required=False, label="Note / reason", widget=forms.TextInput(attrs={"size": 40}))


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("old", "Older than 7 days")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        spans = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
        value = self.value()
        if value in spans:
            return queryset.filter(last_failed_at__gte=timezone.now() - spans[value])
        if value == "old":
            return queryset.filter(last_failed_at__lt=timezone.now() - spans["7d"])
        return queryset


class DeadLetterActionInline(admin.TabularInline):
    model = DeadLetterAction
    extra = 0
    can_delete = False
    readonly_fields = ("created_at", "action", "actor", "reason")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "module",
        "message_type",
        "consumer",
        "order_id",
        "error_type",
        "attempts",
        "last_failed_at",
    )
    list_filter = ("status", "module", "message_type", "consumer", AgeFilter)
    search_fields = ("order_id", "=message_id", "error_message")
    date_hierarchy = "last_failed_at"
    action_form = ReasonActionForm
    actions = ["retry_now", "retry_throttled", "resolve", "discard"]
    inlines = [DeadLetterActionInline]
    readonly_fields = (
        "message_id",
        "message_type",
        "module",
        "consumer",
        "queue",
        "order_id",
        "error_type",
        "error_message",
        "pretty_traceback",
        "pretty_envelope",
        "attempts",
        "first_failed_at",
        "last_failed_at",
        "status",
        "status_changed_by",
        "status_reason",
        "status_changed_at",
    )
    exclude = ("envelope", "traceback")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="payload")
    def pretty_envelope(self, obj: DeadLetter) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.envelope, indent=2, sort_keys=True))

    @admin.display(description="traceback")
    def pretty_traceback(self, obj: DeadLetter) -> str:
        return format_html("<pre>{}</pre>", obj.traceback)

    def _each(self, request: HttpRequest, queryset: QuerySet, verb: str, fn: Any, per_second: float | None) -> None:
        done, refused = 0, []
        for letter in queryset.order_by("pk"):
            try:
                fn(letter)
                done += 1
            except DeadLetterNotActionable as exc:
                refused.append(str(exc))
            if per_second:
                time.sleep(1.0 / per_second)
        if done:
            self.message_user(request, f"{verb} {done} dead letter(s).", messages.SUCCESS)
        for reason in refused[:10]:
            self.message_user(request, reason, messages.WARNING)

    def _actor(self, request: HttpRequest) -> str:
        return f"staff:{request.user.get_username()}"

    @admin.action(description="Retry now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        reason = request.POST.get("reason", "")
        self._each(
            request,
            queryset[:1] if queryset.count() > 1 else queryset,
            "Retried",
            lambda letter: dead_letter_retry(letter_id=letter.pk, actor=self._actor(request), reason=reason),
            None,
        )
        if queryset.count() > 1:
            self.message_user(
                request, "Retry now takes one dead letter; use the throttled retry for a selection.", messages.WARNING
            )

    @admin.action(description=f"Retry selection (at most {BATCH_RETRY_PER_SECOND}/s)")
    def retry_throttled(self, request: HttpRequest, queryset: QuerySet) -> None:
        reason = request.POST.get("reason", "")
        self._each(
            request,
            queryset,
            "Retried",
            lambda letter: dead_letter_retry(letter_id=letter.pk, actor=self._actor(request), reason=reason),
            BATCH_RETRY_PER_SECOND,
        )

    @admin.action(description="Resolve (note required)")
    def resolve(self, request: HttpRequest, queryset: QuerySet) -> None:
        note = request.POST.get("reason", "")
        self._each(
            request,
            queryset,
            "Resolved",
            lambda letter: dead_letter_resolve(letter_id=letter.pk, actor=self._actor(request), note=note),
            None,
        )

    @admin.action(description="Discard (reason required)")
    def discard(self, request: HttpRequest, queryset: QuerySet) -> None:
        reason = request.POST.get("reason", "")
        self._each(
            request,
            queryset,
            "Discarded",
            lambda letter: dead_letter_discard(letter_id=letter.pk, actor=self._actor(request), reason=reason),
            None,
        )


@admin.register(RelayHeartbeat)
class RelayHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("relay_id", "beat_at", "published_total")
    readonly_fields = ("relay_id", "beat_at", "published_total")
