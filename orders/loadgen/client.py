"""The platform's REST API as the load generator speaks it (asynchronous aiohttp).

The generator shares the box with the platform, so what it spends is taken from what it measures. Per
request against the platform's web server (a refused POST, 16 in flight): httpx 1.02-1.12 ms of the
generator's CPU, aiohttp 0.15-0.16 ms (its HTTP parser is compiled): at 120 orders/s offered, with the
retries of refused ones, that was a third of a core.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

ORDERS_PATH = "/api/v1/orders"
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Well below the web server's idle keep-alive: a connection the server is closing is not reused.
KEEPALIVE_EXPIRY_S = 1.0
# Requests in flight at most; those beyond wait their turn here, and their latency still counts from the
# moment they were due.
DEFAULT_MAX_CONNECTIONS = 32
JSON_HEADERS = {"Content-Type": "application/json"}


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


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are asyncio's, i.e. TimeoutError
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect_error"
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError
        | aiohttp.ClientConnectionResetError
        | aiohttp.ClientOSError
        | aiohttp.ClientPayloadError,
    ):
        return "connection_closed"
    return type(exc).__name__


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def answer_of(status: int, headers: Any, content: bytes) -> Answer:
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = None
    error = None if 200 <= status < 300 else f"http_{status}"
    return Answer(status=status, body=body, error=error, retry_after=_retry_after(headers))


class PlatformClient:
    """Create it inside the event loop that uses it; ``aclose`` it when done."""

    def __init__(
        self, *, base_url: str, token: str, timeout: float, max_connections: int = DEFAULT_MAX_CONNECTIONS
    ) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._session = aiohttp.ClientSession(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0)),
            connector=aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=KEEPALIVE_EXPIRY_S),
        )

    async def _send(self, method: str, path: str, *, data: bytes | None = None, headers: dict[str, str]) -> Answer:
        async with self._slots:
            try:
                async with self._session.request(
                    method, path, data=data, headers=headers, allow_redirects=False
                ) as response:
                    content = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                return Answer(status=None, error=error_kind(exc))
        return answer_of(response.status, response.headers, content)

    async def place(self, body: dict[str, Any], *, key: str, wait_s: float = 0.0) -> Answer:
        headers = {**JSON_HEADERS, "Idempotency-Key": key}
        if wait_s > 0:
            headers["Prefer"] = f"wait={wait_s:g}"
        return await self._send("POST", ORDERS_PATH, data=json.dumps(body).encode(), headers=headers)

    async def fetch(self, order_id: str) -> Answer:
        return await self._send("GET", f"{ORDERS_PATH}/{order_id}", headers={})

    async def fetch_many(self, order_ids: list[str]) -> Answer:
        """One lookup of several orders: ``{"orders": [...], "not_found": [...]}``."""
        query = "&".join(f"id={order_id}" for order_id in order_ids)
        return await self._send("GET", f"{ORDERS_PATH}?{query}", headers={})

    async def get(self, path: str) -> Answer:
        return await self._send("GET", path, headers={})

    async def aclose(self) -> None:
        await self._session.close()
