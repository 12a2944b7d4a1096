"""A request's environ holds what the server set for the request, not the process's environment."""

from __future__ import annotations

import os
from typing import Any

from config.request_environ import without_process_environment


def test_the_process_environment_is_dropped_and_the_request_kept(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/orders")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("HTTP_X_TENANT", "from-the-process")
    seen: list[dict[str, Any]] = []
    app = without_process_environment(lambda environ, start_response: seen.append(dict(environ)) or [b""])
    environ = {
        **os.environ,  # what granian starts each request's environ from
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/v1/orders/1",
        "HTTP_AUTHORIZATION": "Bearer t",
        "HTTP_X_TENANT": "from-the-client",  # a header the client sent, of the same name
        "wsgi.url_scheme": "http",
    }

    app(environ, lambda *args: None)
    app({**environ, "HTTP_PROXY": "http://evil"}, lambda *args: None)

    first, second = seen
    assert "DATABASE_URL" not in first and "HTTP_PROXY" not in first
    assert not set(os.environ) & (set(first) - {"HTTP_X_TENANT"})
    assert first["HTTP_X_TENANT"] == "from-the-client"
    assert (first["REQUEST_METHOD"], first["PATH_INFO"], first["HTTP_AUTHORIZATION"]) == (
        "GET",
        "/api/v1/orders/1",
        "Bearer t",
    )
    assert first["wsgi.url_scheme"] == "http"
    assert second["HTTP_PROXY"] == "http://evil"  # sent by a client: a header like any other
