from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from orders.models import ApiClient, ClientRole
from orders.services.clients import token_digest


class ClientToken(HttpBearer):
    """``Authorization: Bearer <token>`` of an active client with one of ``roles``;
    the request's client is then ``request.auth``."""

    def __init__(self, roles: frozenset[str] = frozenset({ClientRole.MERCHANT})) -> None:
        super().__init__()
        self.roles = roles

    def authenticate(self, request: HttpRequest, token: str) -> ApiClient | None:
        if not token:
            return None
        return ApiClient.objects.filter(token_sha256=token_digest(token), is_active=True, role__in=self.roles).first()


class StaffSession(SessionAuth):
    """A staff user logged in to the admin (CSRF-protected)."""

    def authenticate(self, request: HttpRequest, key: str | None) -> object | None:
        user = super().authenticate(request, key)
        return user if user is not None and getattr(user, "is_staff", False) else None
