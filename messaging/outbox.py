"""Writing to a module's outbox, inside the module's own transaction."""

from __future__ import annotations

from typing import Any

from django.db import connections

from messaging.db import insert_rows
from messaging.models import OutboxMessage
from messaging.tracing import trace_headers

NOTIFY_CHANNEL = "outbox"


class OutboxOutsideTransaction(RuntimeError):
    """An outbox row must commit with the state change it announces."""


def outbox_append(
    *,
    model: type[OutboxMessage],
    message_type: str,
    aggregate_id: str,
    sequence: int,
    payload: dict[str, Any],
    correlation_id: str,
    causation_id: str = "",
    region: str = "",
    version: int = 1,
    headers: dict[str, Any] | None = None,
) -> OutboxMessage:
    alias = model.objects.db
    if not connections[alias].in_atomic_block:
        raise OutboxOutsideTransaction(f"{message_type} must be written inside transaction.atomic(using={alias!r})")
    message = model(
        message_type=message_type,
        version=version,
        aggregate_id=aggregate_id,
        sequence=sequence,
        payload=payload,
        correlation_id=correlation_id,
        causation_id=causation_id,
        region=region,
        headers={**trace_headers(), **(headers or {})},
    )
    insert_rows([message])
    return message


def notify_trigger_sql(table: str) -> tuple[str, str]:
    """SQL (forward, reverse) for a trigger that wakes relays when ``table`` commits rows.

    NOTIFY is delivered at commit and folded per transaction, so a relay
    hears of new rows the moment they become visible, and only once.
    """
    forward = f"""
        CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{NOTIFY_CHANNEL}', TG_TABLE_SCHEMA);
            RETURN NULL;
        END $$;
        CREATE TRIGGER {table}_notify AFTER INSERT ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
    """
    reverse = f"DROP TRIGGER IF EXISTS {table}_notify ON {table};"
    return forward, reverse
