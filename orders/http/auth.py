from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from orders.client_tokens import active_client_for_token
from orders.models import ApiClient, ClientRole


class ClientToken(HttpBearer):
    """``Authorization: Bearer <token>`` of an active client with one of ``roles``;
    the request's client is then ``request.auth``."""

    def __init__(self, roles: frozenset[str] = frozenset({ClientRole.MERCHANT})) -> None:
        super().__init__()
        self.roles = roles

    def authenticate(self, request: HttpRequest, token: str) -> ApiClient | None:
        if not token:
            return None
        client = active_client_for_token(token)
        return client if client is not None and client.role in self.roles else None


class StaffSession(SessionAuth):
    """A staff user logged in to the admin (CSRF-protected)."""

    def authenticate(self, request: HttpRequest, key: str | None) -> object | None:
        user = super().authenticate(request, key)
        return user if user is not None and getattr(user, "is_staff", False) else None
