"""What a load run needs on the platform: an API client and stock to sell."""

from __future__ import annotations

import uuid

from orders.services.clients import api_client_create


def new_api_token(prefix: str = "loadtest") -> str:
    """A fresh merchant client for this run; returns its bearer token."""
    _client, token = api_client_create(name=f"{prefix}-{uuid.uuid4().hex[:10]}")
    return token


def run_id() -> str:
    return f"load-{uuid.uuid4().hex[:8]}"
