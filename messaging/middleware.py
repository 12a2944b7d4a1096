"""Per-request context: X-Request-ID in and out, bound to every log line and
span of the request, and used as the correlation id of what it starts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from messaging.context import bound, correlation_id_from
from messaging.tracing import span

log = logging.getLogger("http")


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        correlation_id = correlation_id_from(request.headers.get("X-Request-ID"))
        request.correlation_id = correlation_id  # type: ignore[attr-defined]
        started = time.perf_counter()
        with (
            bound(correlation_id=correlation_id),
            span(
                f"HTTP {request.method} {request.path}",
                parent=request.headers,
                http_method=request.method,
                http_target=request.path,
            ),
        ):
            response = self.get_response(request)
            log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={"status": response.status_code, "ms": round((time.perf_counter() - started) * 1000, 1)},
            )
        response["X-Request-ID"] = correlation_id
        return response
