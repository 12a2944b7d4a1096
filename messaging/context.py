"""What a log line should say about the work at hand: correlation id, order,
message, saga step. Bound in contextvars, so it follows the work through
threads of a Celery pool and is cleared when the work ends."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from messaging.contracts import Envelope

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def correlation_id_from(header: str | None) -> str:
    """A caller's X-Request-ID if it is a sane identifier, else a fresh one."""
    if header and _SAFE_ID.match(header):
        return header
    return str(uuid.uuid4())


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Bind ``values`` to every log line written inside the block."""
    tokens = structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v not in (None, "")})
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def envelope_context(envelope: Envelope, consumer: str) -> dict[str, Any]:
    return {
        "correlation_id": envelope.correlation_id,
        "message_id": str(envelope.message_id),
        "message_type": envelope.message_type,
        "consumer": consumer,
        "order_id": envelope.payload.get("order_id")
        or (envelope.aggregate_id if envelope.source == "orders" else None),
    }
