"""Writing to a module's outbox, inside the module's own transaction."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, TypeVar, Unpack

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import connections, migrations, models
from django.db.migrations.operations.base import Operation
from django.utils import timezone

from messaging.db import insert_rows
from messaging.event_hold import gathered_message_types
from messaging.models import OutboxMessage
from messaging.tracing import trace_headers

NOTIFY_CHANNEL = "outbox"
M = TypeVar("M", bound=OutboxMessage)


class OutboxOutsideTransaction(RuntimeError):
    """An outbox row must commit with the state change it announces."""


class MessageFields(TypedDict):
    message_type: str
    aggregate_id: str
    sequence: int
    payload: dict[str, Any]
    correlation_id: str
    causation_id: NotRequired[str]
    region: NotRequired[str]
    version: NotRequired[int]
    headers: NotRequired[dict[str, Any] | None]


def outbox_message(*, model: type[M], **fields: Unpack[MessageFields]) -> M:
    """An outbox row, not yet written: for a statement that writes it with the change it announces
    (``update_where_then_insert``, or ``insert_rows`` of several models inside the module's transaction)."""
    headers = fields.pop("headers", None) or {}
    held_at = timezone.now() if fields["message_type"] in gathered_message_types() else None
    return model(**fields, headers={**trace_headers(), **headers}, held_at=held_at)


def outbox_append(*, model: type[M], **fields: Unpack[MessageFields]) -> M:
    """Write an outbox row inside the module's open transaction."""
    alias = model.objects.db
    if not connections[alias].in_atomic_block:
        raise OutboxOutsideTransaction(
            f"{fields['message_type']} must be written inside transaction.atomic(using={alias!r})"
        )
    row = outbox_message(model=model, **fields)
    insert_rows([row])
    return row


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


def notify_due_trigger_sql(table: str) -> tuple[str, str]:
    """SQL (forward, reverse) that replaces ``notify_trigger_sql``'s trigger on ``table`` by one that wakes
    relays only when a statement wrote a row due now: rows written held (gathered events,
    ``messaging.event_hold``) wait for the relay's next release and wake nobody. Like ``outbox_held_migration``
    it gives up after 5 s without the table's lock rather than queue every writer behind it. What it produces
    must never change: applied migrations rely on it."""
    forward = f"""
        SET LOCAL lock_timeout = '5s';
        CREATE OR REPLACE FUNCTION outbox_notify_due() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM inserted WHERE held_at IS NULL) THEN
                PERFORM pg_notify('{NOTIFY_CHANNEL}', TG_TABLE_SCHEMA);
            END IF;
            RETURN NULL;
        END $$;
        DROP TRIGGER IF EXISTS {table}_notify ON {table};
        CREATE TRIGGER {table}_notify AFTER INSERT ON {table} REFERENCING NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify_due();
    """
    reverse = f"""
        DROP TRIGGER IF EXISTS {table}_notify ON {table};
        CREATE TRIGGER {table}_notify AFTER INSERT ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
    """
    return forward, reverse


def outbox_held_migration(*, app_label: str, model_name: str) -> list[Operation]:
    """The operations that give a module's outbox its ``held_at`` column (``messaging.event_hold``), for that
    module's migration (``atomic = False``). What they produce must never change: applied migrations rely on it.

    The outbox takes writes all the time: the column is added (a brief exclusive lock) only if that lock is had
    within 5 s, so that a long transaction on the table cannot queue every writer behind the migration (it fails
    instead, and is run again); the indexes are built without locking writers out, the new ones before the old
    one goes, so the relay always has one to claim through. A failed concurrent build leaves an INVALID index:
    drop it, then migrate again.
    """
    return [
        migrations.RunSQL("SET lock_timeout = '5s'", reverse_sql="RESET lock_timeout"),
        migrations.AddField(model_name=model_name, name="held_at", field=models.DateTimeField(blank=True, null=True)),
        migrations.RunSQL("RESET lock_timeout", reverse_sql="SET lock_timeout = '5s'"),
        AddIndexConcurrently(
            model_name=model_name,
            index=models.Index(
                condition=models.Q(held_at__isnull=True, published_at__isnull=True),
                fields=["created_at"],
                name=f"{app_label}_outbox_due",
            ),
        ),
        AddIndexConcurrently(
            model_name=model_name,
            index=models.Index(
                condition=models.Q(held_at__isnull=False, published_at__isnull=True),
                fields=["created_at"],
                name=f"{app_label}_outbox_held",
            ),
        ),
        RemoveIndexConcurrently(model_name=model_name, name=f"{app_label}_outbox_pending"),
    ]
