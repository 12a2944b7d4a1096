from __future__ import annotations

import uuid

from django.db.models import Sum

from payments.contracts import PaymentSummary
from payments.models import Authorization, Capture, LedgerEntry, Refund


def payment_summary(*, order_id: uuid.UUID) -> PaymentSummary:
    auth = Authorization.objects.filter(order_id=order_id).first()
    captures = list(Capture.objects.filter(order_id=order_id))
    refund = Refund.objects.filter(order_id=order_id).first()
    return PaymentSummary(
        order_id=str(order_id),
        authorization_status=auth.status if auth else None,
        authorized_minor=auth.amount_minor if auth else 0,
        captured_minor=sum(c.amount_minor for c in captures),
        refunded_minor=refund.amount_minor if refund else 0,
        currency=auth.currency if auth else None,
        captures=len(captures),
    )


def ledger_balance(*, order_id: uuid.UUID | None = None) -> tuple[int, int]:
    """(total debits, total credits), for one order or for everything."""
    entries = LedgerEntry.objects.all() if order_id is None else LedgerEntry.objects.filter(order_id=order_id)
    totals = entries.aggregate(d=Sum("debit_minor"), c=Sum("credit_minor"))
    return totals["d"] or 0, totals["c"] or 0
