"""The relay: moves committed outbox rows of every module onto the broker.

- Claims rows with ``FOR UPDATE SKIP LOCKED`` in creation order, so several
  relays share the work and none skips a row (no ``id > last`` polling).
- Claims and marks a batch in one statement, publishes it in one round trip
  to the broker, then commits. A crash before the commit leaves the rows
  unpublished: they go out again (at-least-once), and consumers' inboxes
  make the second delivery harmless.
- Wakes on PostgreSQL NOTIFY (sent at commit by a trigger on each outbox,
  naming its schema) and drains only the outboxes named; polling every
  ``poll_interval`` drains them all and covers a lost notification.
- Claims at most once per ``gather_s`` while notifications keep coming, so
  that under load the commits of those milliseconds go out in one claim
  and one broker round trip (a claim and its commit per row cost more
  than the publishing); the first notification after a quiet spell is
  claimed at once, so that a message waits longer only when others do.
- If the broker is down the transaction rolls back, the relay backs off and
  the backlog drains in order once the broker is back.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any, NamedTuple

import psycopg
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.utils import timezone
from kombu import Producer

from config.celery import app as celery_app
from messaging.event_hold import EventHold
from messaging.faults import crash_point
from messaging.metrics import RELAY_BATCH_SECONDS, RELAY_BATCH_SIZE, RELAY_HELD, RELAY_PUBLISHED
from messaging.models import OutboxMessage, RelayHeartbeat
from messaging.outbox import NOTIFY_CHANNEL
from messaging.publisher import publish_envelopes
from messaging.subscriptions import load_all_consumers

log = logging.getLogger("messaging.relay")


def outbox_models() -> list[type[OutboxMessage]]:
    return [m for m in apps.get_models() if issubclass(m, OutboxMessage)]


ENVELOPE_COLUMNS = (
    "id",
    "message_type",
    "version",
    "aggregate_id",
    "sequence",
    "correlation_id",
    "causation_id",
    "region",
    "created_at",
    "payload",
    "headers",
)


def envelope_of(row: OutboxMessage, source: str) -> dict[str, Any]:
    """The wire envelope of an outbox row."""
    return {
        "message_id": str(row.id),
        "message_type": row.message_type,
        "version": row.version,
        "source": source,
        "aggregate_id": row.aggregate_id,
        "sequence": row.sequence,
        "correlation_id": row.correlation_id,
        "causation_id": row.causation_id,
        "region": row.region,
        "created_at": row.created_at.isoformat(),
        "payload": row.payload,
        "headers": row.headers,
    }


def claimed_envelope(row: tuple[Any, ...], source: str) -> dict[str, Any]:
    """The wire envelope of a row as the claim returns it (``ENVELOPE_COLUMNS``, jsonb as text)."""
    fields = dict(zip(ENVELOPE_COLUMNS, row, strict=True))
    return {
        "message_id": str(fields.pop("id")),
        "message_type": fields.pop("message_type"),
        "version": fields.pop("version"),
        "source": source,
        "created_at": fields.pop("created_at").isoformat(),
        # Django's PostgreSQL backend hands jsonb to Python as text.
        "payload": json.loads(fields.pop("payload")),
        "headers": json.loads(fields.pop("headers")),
        **fields,
    }


@cache
def claim_sql(model: type[OutboxMessage], *, held: bool = False) -> str:
    """Lock the oldest rows due now (or, ``held``, held back earlier) that no other relay holds, and return them
    oldest first, each marked published, or held when its type is in the statement's array parameter (only
    rows due now are ever held). The last column says whether the row was held."""
    ops = connections[model.objects.db].ops
    table = ops.quote_name(model._meta.db_table)
    columns = ", ".join(ops.quote_name(column) for column in ENVELOPE_COLUMNS)
    if held:
        due, hold = "held_at IS NOT NULL", "published_at = clock_timestamp()"
    else:
        due = "held_at IS NULL"
        hold = (
            "published_at = CASE WHEN message_type = ANY(%s) THEN NULL ELSE clock_timestamp() END, "
            "held_at = CASE WHEN message_type = ANY(%s) THEN clock_timestamp() END"
        )
    return (
        f"WITH claimed AS (UPDATE {table} SET {hold} WHERE id IN ("
        f"SELECT id FROM {table} WHERE published_at IS NULL AND {due} ORDER BY created_at LIMIT %s "
        f"FOR UPDATE SKIP LOCKED) RETURNING {columns}, published_at IS NULL) SELECT * FROM claimed ORDER BY created_at"
    )


_NO_FLUSH_WAIT = "-c synchronous_commit=off"


def _commit_without_flush_wait(alias: str) -> None:
    """Let the current transaction on ``alias`` commit without waiting for its WAL to reach the disk: a
    round trip, unless the session was opened so (``relay_sessions_commit_without_flush_wait``)."""
    if _NO_FLUSH_WAIT in connections[alias].settings_dict["OPTIONS"].get("options", ""):
        return
    with connections[alias].cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO off")


def relay_sessions_commit_without_flush_wait(aliases: Iterable[str]) -> None:
    """Open this process's sessions on ``aliases`` with ``synchronous_commit`` off, as a libpq start-up
    option: the relay's marks and heartbeats then save the ``SET LOCAL`` round trip of each batch.

    Only for a process that writes nothing else (the relay): it changes every later session of the process
    on those aliases. Open sessions are closed, so that the next ones are opened so."""
    for alias in aliases:
        options = connections.settings[alias].setdefault("OPTIONS", {})
        if _NO_FLUSH_WAIT not in options.get("options", ""):
            options["options"] = f"{options.get('options', '')} {_NO_FLUSH_WAIT}".strip()
        connections[alias].close()


def drain_batch(
    model: type[OutboxMessage], batch_size: int, producer: Producer | None = None, *, hold: tuple[str, ...] = ()
) -> int:
    """Publish and mark up to ``batch_size`` rows of one outbox, oldest first; return how many were claimed.

    Rows of a type in ``hold`` are marked held instead and stay in the outbox (``messaging.event_hold``).

    The mark commits without waiting for the WAL flush: should PostgreSQL lose
    it in a crash, the rows go out again, which at-least-once delivery and the
    consumers' inboxes already allow for. The business transactions that wrote
    the rows stay fully durable.
    """
    return claim_and_publish(model, batch_size, producer, hold=hold).claimed


def release_held(model: type[OutboxMessage], limit: int, producer: Producer | None = None) -> int:
    """Publish up to ``limit`` rows held back earlier, oldest first; return how many."""
    return _claim_and_publish(model, claim_sql(model, held=True), [limit], producer).published


class Claimed(NamedTuple):
    claimed: int  # rows taken out of the due set: published or held
    published: int


def claim_and_publish(
    model: type[OutboxMessage], batch_size: int, producer: Producer | None = None, *, hold: tuple[str, ...] = ()
) -> Claimed:
    """``drain_batch``, telling the rows published from the rows claimed."""
    return _claim_and_publish(model, claim_sql(model), [list(hold), list(hold), batch_size], producer)


def _claim_and_publish(model: type[OutboxMessage], sql: str, params: list[Any], producer: Producer | None) -> Claimed:
    alias = model.objects.db
    started = time.perf_counter()
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        _commit_without_flush_wait(alias)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if not rows:
            return Claimed(0, 0)
        published = [row[:-1] for row in rows if not row[-1]]
        if published:
            publish_envelopes((claimed_envelope(row, alias) for row in published), producer=producer)
        crash_point("relay.after_publish")
    held = len(rows) - len(published)
    if log.isEnabledFor(logging.INFO) and settings.MESSAGING_RELAY_LOG_EACH:
        for row in rows:
            envelope = dict(zip(ENVELOPE_COLUMNS, row[:-1], strict=True))
            log.info(
                "held %s" if row[-1] else "published %s",
                envelope["message_type"],
                extra={
                    "correlation_id": envelope["correlation_id"],
                    "message_id": str(envelope["id"]),
                    "outbox": alias,
                    "aggregate_id": envelope["aggregate_id"],
                },
            )
    if published:
        RELAY_PUBLISHED.labels(module=alias).inc(len(published))
    if held:
        RELAY_HELD.labels(module=alias).inc(held)
    RELAY_BATCH_SIZE.labels(module=alias).observe(len(rows))
    RELAY_BATCH_SECONDS.labels(module=alias).observe(time.perf_counter() - started)
    return Claimed(len(rows), len(published))


def outbox_backlog(model: type[OutboxMessage], *, held: bool = False) -> tuple[int, float]:
    """(rows due to be published, age in seconds of the oldest) for one outbox; ``held``: of the rows held
    back under load instead."""
    pending = model.objects.filter(published_at__isnull=True, held_at__isnull=not held)
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return pending.count(), age


def prune_published(model: type[OutboxMessage], *, older_than: timedelta, chunk: int = 5000) -> int:
    cutoff = timezone.now() - older_than
    removed = 0
    while True:
        ids = list(model.objects.filter(published_at__lt=cutoff).values_list("pk", flat=True)[:chunk])
        if not ids:
            return removed
        removed += model.objects.filter(pk__in=ids).delete()[0]


def schema_of(model: type[OutboxMessage]) -> str:
    return connections[model.objects.db].settings_dict.get("SCHEMA", "public")


def _dsn(alias: str) -> str:
    s = connections[alias].settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=s["NAME"], user=s["USER"], password=s["PASSWORD"] or None, host=s["HOST"], port=s["PORT"]
    )


@dataclass
class Relay:
    """``gather_s``: while notifications keep coming, claim at most once per this many seconds (0, the default
    here, claims at every notification; ``manage.py relay`` takes ``MESSAGING_RELAY_GATHER_MS``, 50 ms)."""

    batch_size: int = 500
    poll_interval: float = 1.0
    retention: timedelta = timedelta(days=7)
    relay_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    max_backoff: float = 10.0
    gather_s: float = 0.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._due_lock = threading.Lock()
        self._due_schemas: set[str] = set()
        self._producer: Producer | None = None
        self.published_total = 0
        load_all_consumers()
        self._outboxes = {model: schema_of(model) for model in outbox_models()}
        self.hold = EventHold.from_settings(poll_interval=self.poll_interval)
        self._held_somewhere = True  # rows held before a restart may be waiting
        self._last_claim_at = -math.inf
        if not 0.0 <= self.gather_s < math.inf:
            raise ImproperlyConfigured(f"the relay's gather window must be 0 or more seconds, not {self.gather_s}")

    # --- lifecycle
    def stop(self, *_: Any) -> None:
        self._stop.set()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def _listen(self, dsn: str) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._mark_due(set(self._outboxes.values()))  # catch up on what we missed
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=1.0):
                            self._mark_due({notify.payload})
            except psycopg.Error as exc:
                log.warning("relay: LISTEN connection lost (%s); reconnecting", exc)
                self._stop.wait(1.0)

    def start_listeners(self) -> None:
        for dsn in sorted({_dsn(m.objects.db) for m in self._outboxes}):
            threading.Thread(target=self._listen, args=(dsn,), daemon=True, name="relay-listen").start()

    def _mark_due(self, schemas: set[str]) -> None:
        with self._due_lock:
            self._due_schemas |= schemas
        self._wake.set()

    def _anything_due(self) -> bool:
        with self._due_lock:
            return bool(self._due_schemas)

    def _take_due(self) -> list[type[OutboxMessage]]:
        """The outboxes notified since the last call, and forget them."""
        with self._due_lock:
            due, self._due_schemas = self._due_schemas, set()
        return [model for model, schema in self._outboxes.items() if schema in due]

    # --- work
    def drain_all(self, models: Iterable[type[OutboxMessage]] | None = None) -> int:
        """Drain ``models`` (every outbox by default, a sweep) until each has nothing due, holding back what the
        event hold says; then let held rows go as far as its quota allows. Returns the rows published."""
        if models is None:
            # Another relay may hold rows (and stop for good): every sweep looks for held rows again.
            self._held_somewhere = True
        published = 0
        for model in self._outboxes if models is None else models:
            while not self._stop.is_set():
                hold = self.hold.types_to_hold()
                claimed, sent = claim_and_publish(model, self.batch_size, self._broker_producer(), hold=hold)
                published += sent
                if claimed > sent:
                    self._held_somewhere = True
                if claimed < self.batch_size:
                    break
        published += self.release_held()
        self.published_total += published
        return published

    def release_held(self) -> int:
        """Publish held rows, oldest first per outbox, within the event hold's quota. Rows of gathered types
        are written held and wake nobody: while there are such types, every release looks for them."""
        if not self._held_somewhere and not self.hold.gathered:
            return 0
        quota = self.hold.release_quota()
        released = 0
        for model in self._outboxes:
            while released < quota and not self._stop.is_set():
                sent = release_held(model, min(self.batch_size, quota - released), self._broker_producer())
                released += sent
                if not sent:
                    break
        self.hold.released(released)
        if released < quota and not self.hold.holding:
            self._held_somewhere = False  # every outbox answered with less than asked: none holds anything
        return released

    def _broker_producer(self) -> Producer:
        """The relay's own broker connection, kept between batches (taking one from Celery's pool per
        batch cost more than the publishing)."""
        if self._producer is None:
            self._producer = celery_app.amqp.Producer(celery_app.connection_for_write(), auto_declare=False)
        return self._producer

    def _drop_producer(self) -> None:
        """Forget a connection the broker may have broken; the next batch opens a new one."""
        if self._producer is not None:
            with suppress(Exception):
                self._producer.connection.close()
        self._producer = None

    def heartbeat(self) -> None:
        """Say the relay is alive; without waiting for the WAL flush, which would stall publishing meanwhile
        (a beat lost in a database crash is only a late beat)."""
        alias = RelayHeartbeat.objects.db
        with transaction.atomic(using=alias):
            _commit_without_flush_wait(alias)
            RelayHeartbeat.objects.update_or_create(
                relay_id=self.relay_id, defaults={"beat_at": timezone.now(), "published_total": self.published_total}
            )

    def prune(self) -> None:
        for model in self._outboxes:
            removed = prune_published(model, older_than=self.retention)
            if removed:
                log.info("relay: pruned %d published rows from %s", removed, model._meta.db_table)

    def aliases(self) -> set[str]:
        return {model.objects.db for model in self._outboxes} | {RelayHeartbeat.objects.db}

    def run(self) -> None:
        relay_sessions_commit_without_flush_wait(self.aliases())
        self.start_listeners()
        failures = 0
        next_beat = next_prune = next_sweep = 0.0
        log.info("relay %s started", self.relay_id)
        while not self._stop.is_set():
            busy_for = self._last_claim_at + self.gather_s - time.monotonic()
            # Claimed a moment ago: let the rows committed meanwhile come along.
            if busy_for > 0 and self._anything_due() and self._stop.wait(busy_for):
                break
            self._wake.clear()
            notified = self._take_due()
            sweep = time.monotonic() >= next_sweep
            try:
                if sweep or notified:  # a pass with nothing notified claims nothing: it opens no window
                    self._last_claim_at = time.monotonic()
                self.drain_all(None if sweep else notified)
                now = time.monotonic()
                if sweep:
                    next_sweep = now + self.poll_interval
                if now >= next_beat:
                    self.heartbeat()
                    next_beat = now + 2.0
                if now >= next_prune:
                    self.prune()
                    next_prune = now + 600.0
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the relay must outlive broker and DB outages
                failures += 1
                delay = min(self.max_backoff, 0.1 * 2**failures)
                log.warning("relay: publish failed (%r); retrying in %.1fs", exc, delay)
                self._drop_producer()
                for alias in {m.objects.db for m in self._outboxes}:
                    connections[alias].close_if_unusable_or_obsolete()
                self._stop.wait(delay)
                next_sweep = 0.0
                continue
            self._wake.wait(max(0.0, next_sweep - time.monotonic()))
        self._drop_producer()
        log.info("relay %s stopped after publishing %d messages", self.relay_id, self.published_total)
