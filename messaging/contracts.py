"""Types every module shares: the message envelope and the two error kinds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Envelope(BaseModel):
    """A message as it travels from an outbox through the broker to a consumer."""

    model_config = ConfigDict(frozen=True)

    message_id: uuid.UUID
    message_type: str
    version: int = 1
    source: str
    aggregate_id: str
    sequence: int
    correlation_id: str
    causation_id: str = ""
    region: str = ""
    created_at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, Any] = Field(default_factory=dict)


class BusinessError(Exception):
    """A business rule said no: retrying will not change the answer.

    ``code`` is stable and machine-readable; ``detail`` is for people.
    """

    http_status = 422

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail or code


class TransientError(Exception):
    """A participant or dependency is unavailable right now; retry later."""


class DeadLetterSummary(BaseModel):
    """An open dead letter as other modules (reconciliation) see it."""

    model_config = ConfigDict(frozen=True)

    letter_id: int
    module: str
    message_type: str
    consumer: str
    order_id: str
    error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
