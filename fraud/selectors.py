"""Reads of fraud's own records."""

from __future__ import annotations

from django.db.models import Sum

from fraud.contracts import ConfirmedHistory
from fraud.models import CustomerProfile


def confirmed_history() -> ConfirmedHistory:
    """What every customer's profile adds up to: the confirmed orders fraud has counted, and their amounts."""
    totals = CustomerProfile.objects.aggregate(orders=Sum("confirmed_orders"), amount=Sum("confirmed_amount_minor"))
    return ConfirmedHistory(orders=totals["orders"] or 0, amount_minor=totals["amount"] or 0)
