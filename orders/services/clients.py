from __future__ import annotations

import secrets

from orders.client_tokens import token_digest
from orders.models import ApiClient, ClientRole


def api_client_create(*, name: str, role: str = ClientRole.MERCHANT) -> tuple[ApiClient, str]:
    """Create a client and return it with its bearer token (shown only once)."""
    token = f"opk_{secrets.token_urlsafe(32)}"
    client = ApiClient.objects.create(name=name, role=role, token_sha256=token_digest(token))
    return client, token


def api_client_rotate(*, name: str) -> tuple[ApiClient, str]:
    token = f"opk_{secrets.token_urlsafe(32)}"
    client = ApiClient.objects.get(name=name)
    client.token_sha256 = token_digest(token)
    client.save(update_fields=["token_sha256"])
    return client, token
