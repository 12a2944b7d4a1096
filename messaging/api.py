"""The messaging kernel's face to the modules."""

from messaging.adapters import AdapterUnavailable, breaker_state, call_adapter
from messaging.batch_consumers import batch_consumer
from messaging.consumers import apply_once, consumer
from messaging.context import bound
from messaging.contracts import BusinessError, Envelope, TransientError
from messaging.db import (
    atomic_on,
    claim_then_insert,
    create_once,
    insert_rows,
    model_columns,
    rows_of,
    rows_where,
    update_where,
    update_where_then_insert,
)
from messaging.dead_letters import (
    DeadLetterNotActionable,
    dead_letter_discard,
    dead_letter_resolve,
    dead_letter_retry,
    dead_letters_open,
)
from messaging.event_hold import types_held_now
from messaging.faults import crash_point
from messaging.metrics_view import register_scrape_collector
from messaging.models import InboxMessage, KernelOutbox, OutboxMessage
from messaging.outbox import (
    notify_due_trigger_sql,
    notify_trigger_sql,
    outbox_append,
    outbox_held_migration,
    outbox_message,
)
from messaging.queues import QueueWait, queue_wait, queue_waits
from messaging.redis import redis_client
from messaging.relay import Relay, drain_batch, outbox_backlog, outbox_models, release_held
from messaging.subscriptions import load_all_consumers
from messaging.third_party import FaultProfile, fault_profile, set_fault_profile
from messaging.tracing import span, trace_headers

__all__ = [
    "AdapterUnavailable",
    "BusinessError",
    "DeadLetterNotActionable",
    "Envelope",
    "FaultProfile",
    "InboxMessage",
    "KernelOutbox",
    "OutboxMessage",
    "QueueWait",
    "Relay",
    "TransientError",
    "apply_once",
    "atomic_on",
    "batch_consumer",
    "bound",
    "breaker_state",
    "call_adapter",
    "claim_then_insert",
    "consumer",
    "crash_point",
    "create_once",
    "dead_letter_discard",
    "dead_letter_resolve",
    "dead_letter_retry",
    "dead_letters_open",
    "drain_batch",
    "fault_profile",
    "insert_rows",
    "load_all_consumers",
    "model_columns",
    "notify_due_trigger_sql",
    "notify_trigger_sql",
    "outbox_append",
    "outbox_backlog",
    "outbox_held_migration",
    "outbox_message",
    "outbox_models",
    "queue_wait",
    "queue_waits",
    "redis_client",
    "register_scrape_collector",
    "release_held",
    "rows_of",
    "rows_where",
    "set_fault_profile",
    "span",
    "trace_headers",
    "types_held_now",
    "update_where",
    "update_where_then_insert",
]
