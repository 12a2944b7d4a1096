"""Which API client a bearer token belongs to, remembered briefly in each process.

Looking the token up on every request was 16% of the web tier's CPU under load
(`make bench`). An active client is remembered for ``API_CLIENT_CACHE_S``
seconds: a client deactivated, rotated or deleted here is forgotten at once in
this process (model signals) and within that many seconds in every other
process. Unknown tokens are not remembered, so a new client works at once.
"""

from __future__ import annotations

import hashlib
import threading
import time

from django.conf import settings

from orders.models import ApiClient

_lock = threading.Lock()
_known: dict[str, tuple[ApiClient, float]] = {}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def active_client_for_token(token: str) -> ApiClient | None:
    digest = token_digest(token)
    now = time.monotonic()
    remembered = _known.get(digest)
    if remembered is not None and remembered[1] > now:
        return remembered[0]
    client = ApiClient.objects.filter(token_sha256=digest, is_active=True).first()
    with _lock:
        if client is None:
            _known.pop(digest, None)
        elif settings.API_CLIENT_CACHE_S > 0:
            _known[digest] = (client, now + settings.API_CLIENT_CACHE_S)
    return client


def forget_clients(**_: object) -> None:
    """Forget every remembered client (connected to ApiClient's save and delete signals)."""
    with _lock:
        _known.clear()
