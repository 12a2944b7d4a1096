"""The platform's REST API as the load generator speaks it (asynchronous httpx)."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import logging
import math
import sys
from dataclasses import dataclass
from typing import Any

import httpx

ORDERS_PATH = "/api/v1/orders"
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Well below the web server's idle keep-alive: a connection the server is closing is not reused.
KEEPALIVE_EXPIRY_S = 1.0
# httpcore's pool scans every connection for every request: hundreds of them
# would cost the generator more CPU than the platform. Requests beyond this
# wait their turn here; their latency still counts from the moment they were due.
DEFAULT_MAX_CONNECTIONS = 32
# Connections are spread over several small pools, so each scan stays short.
CONNECTIONS_PER_POOL = 8


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: a status and JSON body, or the kind of error that prevented it."""

    status: int | None
    body: dict[str, Any] | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUSES


def _error_kind(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect_error"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "connection_closed"
    return type(exc).__name__


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _answer(response: httpx.Response) -> Answer:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = None if response.is_success else f"http_{response.status_code}"
    return Answer(status=response.status_code, body=body, error=error, retry_after=_retry_after(response))


def remember_missing_sniffio() -> None:
    """httpcore 1.0.9 tries ``import sniffio`` for every lock and event it creates, and a failed
    import is not cached: without sniffio installed each request walks ``sys.path`` several times
    (encode/httpcore#1103). Recording the module as absent makes those imports fail at once."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def quiet_http_logs() -> None:
    """httpx logs every request at INFO: thousands of lines a second under load."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


class PlatformClient:
    def __init__(
        self, *, base_url: str, token: str, timeout: float, max_connections: int = DEFAULT_MAX_CONNECTIONS
    ) -> None:
        quiet_http_logs()
        remember_missing_sniffio()
        self._slots = asyncio.Semaphore(max_connections)
        per_pool = min(max_connections, CONNECTIONS_PER_POOL)
        self._pools = [_pool(base_url, token, timeout, per_pool) for _ in range(math.ceil(max_connections / per_pool))]
        self._next_pool = itertools.cycle(self._pools)

    async def _send(self, method: str, path: str, **kwargs: Any) -> Answer:
        async with self._slots:
            try:
                response = await next(self._next_pool).request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                return Answer(status=None, error=_error_kind(exc))
        return _answer(response)

    async def place(self, body: dict[str, Any], *, key: str, wait_s: float = 0.0) -> Answer:
        headers = {"Idempotency-Key": key}
        if wait_s > 0:
            headers["Prefer"] = f"wait={wait_s:g}"
        return await self._send("POST", ORDERS_PATH, json=body, headers=headers)

    async def fetch(self, order_id: str) -> Answer:
        return await self._send("GET", f"{ORDERS_PATH}/{order_id}")

    async def get(self, path: str) -> Answer:
        return await self._send("GET", path)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def _pool(base_url: str, token: str, timeout: float, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(
            max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=KEEPALIVE_EXPIRY_S
        ),
    )
