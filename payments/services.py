"""Money movements. The gateway is called outside any database transaction
(it is slow and remote) with an idempotency key per (order, operation); the
result is then recorded in one local transaction. A crash in between is
repaired by calling again: the gateway answers the same."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from messaging.api import (
    atomic_on,
    call_adapter,
    create_once,
    insert_rows,
    rows_where,
    update_where_then_insert,
)
from payments.contracts import CapturedAfterVoid, PaymentDeclined
from payments.gateway import GatewayResult, payment_gateway
from payments.models import Authorization, AuthorizationStatus, Capture, LedgerAccount, LedgerEntry, Refund

atomic = atomic_on("payments")
log = logging.getLogger("payments.capture")


def _gateway(operation: str, call: Callable[[], GatewayResult]) -> GatewayResult:
    return call_adapter("payment_gateway", operation, call)


def _key(order_id: uuid.UUID, operation: str) -> str:
    return f"{order_id}:{operation}"


def authorization_create(
    *, order_id: uuid.UUID, amount_minor: int, currency: str, token: str, first_call: bool = False
) -> Authorization:
    """Authorize once per order. A repeated call answers from the record, without calling the gateway. With
    ``first_call`` (the caller knows no call came before) the record is not looked for first: one statement
    less. Were the caller wrong, nothing is doubled: the gateway answers the key's first call again, and the
    first record written stays the only one."""
    found = [] if first_call else rows_where(Authorization, order_id=order_id)
    existing = found[0] if found else None
    if existing is None:
        result = _gateway(
            "authorize",
            lambda: payment_gateway().authorize(
                idempotency_key=_key(order_id, "authorize"), token=token, amount_minor=amount_minor, currency=currency
            ),
        )
        existing, _ = create_once(
            Authorization,
            order_id=order_id,
            defaults={
                "amount_minor": amount_minor,
                "currency": currency,
                "payment_token": token,
                "status": AuthorizationStatus.AUTHORIZED if result.approved else AuthorizationStatus.DECLINED,
                "gateway_reference": result.reference,
                "decline_code": result.decline_code,
            },
        )
    if existing.status == AuthorizationStatus.DECLINED:
        raise PaymentDeclined(existing.decline_code)
    return existing


def _journal(
    order_id: uuid.UUID, *, debit: str, credit: str, amount_minor: int, currency: str, memo: str
) -> list[LedgerEntry]:
    """One movement's two entries, not yet written."""
    journal = uuid.uuid4()
    entry = {"journal_id": journal, "order_id": order_id, "currency": currency, "memo": memo}
    return [
        LedgerEntry(**entry, account=debit, debit_minor=amount_minor),
        LedgerEntry(**entry, account=credit, credit_minor=amount_minor),
    ]


def _post(order_id: uuid.UUID, *, debit: str, credit: str, amount_minor: int, currency: str, memo: str) -> None:
    insert_rows(_journal(order_id, debit=debit, credit=credit, amount_minor=amount_minor, currency=currency, memo=memo))


def capture_create(*, order_id: uuid.UUID) -> Capture:
    """Capture the authorized amount, at most once per order."""
    found = rows_where(Authorization, order_id=order_id)
    if not found:
        raise Authorization.DoesNotExist(f"order {order_id} has no authorization")
    auth = found[0]
    if auth.status != AuthorizationStatus.AUTHORIZED:  # a capture turns it CAPTURED in its own transaction
        done = rows_where(Capture, order_id=order_id)
        if done:
            return done[0]
        raise Authorization.DoesNotExist(f"order {order_id} has no open authorization ({auth.status})")
    result = _gateway(
        "capture",
        lambda: payment_gateway().capture(
            idempotency_key=_key(order_id, "capture"),
            authorization_ref=auth.gateway_reference,
            amount_minor=auth.amount_minor,
            currency=auth.currency,
        ),
    )
    if not result.approved:
        raise PaymentDeclined(result.decline_code or "capture_declined")
    recorded = {
        "authorization": auth,
        "amount_minor": auth.amount_minor,
        "currency": auth.currency,
        "gateway_reference": result.reference,
    }
    capture = Capture(order_id=order_id, **recorded)
    entries = _journal(
        order_id,
        debit=LedgerAccount.GATEWAY_CLEARING,
        credit=LedgerAccount.SALES,
        amount_minor=capture.amount_minor,
        currency=capture.currency,
        memo="capture",
    )
    # The authorization turns CAPTURED only from AUTHORIZED (not over a void that came first), and the
    # capture and its ledger entries are written with it, in one statement.
    if update_where_then_insert(
        Authorization,
        where={"id": auth.pk, "status": AuthorizationStatus.AUTHORIZED},
        values={"status": AuthorizationStatus.CAPTURED},
        rows=[capture, *entries],
    ):
        return capture
    done = rows_where(Capture, order_id=order_id)  # another run of this step got there first
    if done:
        return done[0]
    _record_capture_after_void(order_id, recorded=recorded, entries=entries)
    raise CapturedAfterVoid(str(order_id))


def _record_capture_after_void(order_id: uuid.UUID, *, recorded: dict[str, Any], entries: list[LedgerEntry]) -> None:
    """The authorization was voided here while the gateway captured (a cancel, a repair): the money is taken
    all the same. Record it, so that compensation finds the capture and refunds it."""
    with atomic():
        _, created = create_once(Capture, order_id=order_id, defaults=recorded)
        if created:
            insert_rows(entries)
    log.warning("order %s: captured at the gateway after its authorization was voided; recorded", order_id)


def authorization_void(*, order_id: uuid.UUID) -> bool:
    """Release the hold of an uncaptured authorization. Idempotent."""
    auth = Authorization.objects.filter(order_id=order_id, status=AuthorizationStatus.AUTHORIZED).first()
    if auth is None:
        return False
    _gateway(
        "void",
        lambda: payment_gateway().void(
            idempotency_key=_key(order_id, "void"), authorization_ref=auth.gateway_reference
        ),
    )
    with atomic():
        return bool(
            Authorization.objects.filter(pk=auth.pk, status=AuthorizationStatus.AUTHORIZED).update(
                status=AuthorizationStatus.VOIDED
            )
        )


def capture_refund(*, order_id: uuid.UUID) -> Refund | None:
    """Give back a captured amount in full. Idempotent."""
    capture = Capture.objects.filter(order_id=order_id).first()
    if capture is None:
        return None
    done = Refund.objects.filter(order_id=order_id).first()
    if done is not None:
        return done
    result = _gateway(
        "refund",
        lambda: payment_gateway().refund(
            idempotency_key=_key(order_id, "refund"),
            capture_ref=capture.gateway_reference,
            amount_minor=capture.amount_minor,
            currency=capture.currency,
        ),
    )
    with atomic():
        refund, created = Refund.objects.get_or_create(
            order_id=order_id,
            defaults={
                "capture": capture,
                "amount_minor": capture.amount_minor,
                "currency": capture.currency,
                "gateway_reference": result.reference,
            },
        )
        if created:
            Authorization.objects.filter(order_id=order_id).update(status=AuthorizationStatus.REFUNDED)
            _post(
                order_id,
                debit=LedgerAccount.SALES,
                credit=LedgerAccount.GATEWAY_CLEARING,
                amount_minor=refund.amount_minor,
                currency=refund.currency,
                memo="refund",
            )
    return refund
