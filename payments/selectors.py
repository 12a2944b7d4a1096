from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce

from payments.contracts import PaymentRecord, PaymentSummary
from payments.models import Authorization, Capture, LedgerAccount, LedgerEntry, Refund


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


def _money_by_order(model: type[Capture | Refund], order_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    rows = (
        model.objects.filter(order_id__in=order_ids)
        .values("order_id")
        .annotate(count=Count("pk"), amount=Sum("amount_minor"), currencies=ArrayAgg("currency", distinct=True))
        .order_by()
    )
    return {row["order_id"]: row for row in rows}


def _ledger_by_order(order_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    sales = Q(account=LedgerAccount.SALES)
    rows = (
        LedgerEntry.objects.filter(order_id__in=order_ids)
        .values("order_id")
        .annotate(
            debit=Sum("debit_minor"),
            credit=Sum("credit_minor"),
            sales=Coalesce(Sum("credit_minor", filter=sales), 0) - Coalesce(Sum("debit_minor", filter=sales), 0),
            currencies=ArrayAgg("currency", distinct=True),
        )
        .order_by()
    )
    return {row["order_id"]: row for row in rows}


def payment_records(*, order_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, PaymentRecord]:
    """order id → what payments recorded about it, for every id asked (one query per table)."""
    ids = list(order_ids)
    authorizations = {
        a.order_id: a
        for a in Authorization.objects.filter(order_id__in=ids).only("order_id", "status", "amount_minor", "currency")
    }
    captures, refunds, ledger = _money_by_order(Capture, ids), _money_by_order(Refund, ids), _ledger_by_order(ids)
    records = {}
    for order_id in ids:
        auth, capture = authorizations.get(order_id), captures.get(order_id, {})
        refund, books = refunds.get(order_id, {}), ledger.get(order_id, {})
        records[order_id] = PaymentRecord(
            order_id=str(order_id),
            authorization_status=auth.status if auth else None,
            authorized_minor=auth.amount_minor if auth else 0,
            currency=auth.currency if auth else None,
            captures=capture.get("count", 0),
            captured_minor=capture.get("amount", 0),
            capture_currencies=tuple(sorted(capture.get("currencies", ()))),
            refunds=refund.get("count", 0),
            refunded_minor=refund.get("amount", 0),
            ledger_debit_minor=books.get("debit", 0),
            ledger_credit_minor=books.get("credit", 0),
            ledger_sales_minor=books.get("sales", 0),
            ledger_currencies=tuple(sorted(books.get("currencies", ()))),
        )
    return records
