from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from orders.models import ApiClient
from orders.services.clients import token_digest


class ClientToken(HttpBearer):
    """``Authorization: Bearer <token>``; the request's client is ``request.auth``."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiClient | None:
        if not token:
            return None
        return ApiClient.objects.filter(token_sha256=token_digest(token), is_active=True).first()
