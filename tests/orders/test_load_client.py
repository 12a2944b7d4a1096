"""The load generator's HTTP client against a server on a real socket: what it sends, what it makes of the
answers, and the kinds of errors it counts."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from orders.loadgen.client import PlatformClient

pytestmark = pytest.mark.django_db(databases=[])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]], check: Callable[[str], Any]) -> Any:
    async def main() -> Any:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, handler_cancellation=True)  # a handler still sleeping does not hold cleanup
        await runner.setup()
        port = _free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await check(f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def test_a_placed_order_carries_its_key_token_and_body_and_its_answer_is_read() -> None:
    seen: list[tuple[str, str, dict[str, str], Any]] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        seen.append((request.method, request.path, dict(request.headers), body))
        if request.method == "POST":
            return web.json_response({"id": "o-1", "state": "pending"}, status=202)
        return web.json_response({"id": "o-1", "state": "confirmed"})

    async def check(url: str) -> tuple[Any, Any]:
        client = PlatformClient(base_url=url, token="t0k", timeout=5.0)
        try:
            placed = await client.place({"region": "eu"}, key="k-1", wait_s=1.5)
            fetched = await client.fetch("o-1")
        finally:
            await client.aclose()
        return placed, fetched

    placed, fetched = _serve(handler, check)

    assert (placed.status, placed.ok, placed.body, placed.error) == (202, True, {"id": "o-1", "state": "pending"}, None)
    assert fetched.body == {"id": "o-1", "state": "confirmed"}
    (post_method, post_path, post_headers, post_body), (get_method, get_path, get_headers, _) = seen
    assert (post_method, post_path, post_body) == ("POST", "/api/v1/orders", {"region": "eu"})
    assert post_headers["Idempotency-Key"] == "k-1"
    assert post_headers["Prefer"] == "wait=1.5"
    assert post_headers["Authorization"] == get_headers["Authorization"] == "Bearer t0k"
    assert post_headers["Content-Type"] == "application/json"
    assert (get_method, get_path) == ("GET", "/api/v1/orders/o-1")


def test_a_refusal_is_retryable_and_says_when_to_come_back() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "overloaded"}}, status=503, headers={"Retry-After": "4"})

    async def check(url: str) -> Any:
        client = PlatformClient(base_url=url, token="t", timeout=5.0)
        try:
            return await client.place({}, key="k")
        finally:
            await client.aclose()

    refused = _serve(handler, check)

    assert (refused.status, refused.ok, refused.retryable, refused.error) == (503, False, True, "http_503")
    assert refused.retry_after == 4.0
    assert refused.body == {"error": {"code": "overloaded"}}


def test_a_body_that_is_not_json_and_a_client_error_are_told_apart() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.Response(text="<html>bad gateway</html>", status=422)
        return web.Response(text=json.dumps([1, 2]), content_type="application/json")

    async def check(url: str) -> tuple[Any, Any]:
        client = PlatformClient(base_url=url, token="t", timeout=5.0)
        try:
            return await client.place({}, key="k"), await client.get("/x")
        finally:
            await client.aclose()

    rejected, listed = _serve(handler, check)

    assert (rejected.status, rejected.body, rejected.retryable, rejected.error) == (422, None, False, "http_422")
    assert (listed.status, listed.body, listed.ok) == (200, None, True)  # not an object: no body to read


def test_no_server_is_a_connect_error_and_a_silent_one_a_timeout() -> None:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(status=204)

    async def check(url: str) -> tuple[Any, Any]:
        silent = PlatformClient(base_url=url, token="t", timeout=0.3)
        nobody = PlatformClient(base_url=f"http://127.0.0.1:{_free_port()}", token="t", timeout=2.0)
        try:
            return await silent.fetch("o"), await nobody.fetch("o")
        finally:
            await silent.aclose()
            await nobody.aclose()

    timed_out, refused = _serve(handler, check)

    assert (timed_out.status, timed_out.error, timed_out.retryable) == (None, "timeout", True)
    assert (refused.status, refused.error, refused.retryable) == (None, "connect_error", True)
