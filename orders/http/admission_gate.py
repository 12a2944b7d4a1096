"""Middleware that sheds requests before authentication and validation.

For a new order it reads only the body's ``region`` (a body it cannot read
goes on to the view, which answers 400 or 422 as usual). An order admitted
counts into its region's lag while its request runs, and for a quarter second
after the view placed it (``admission_ticket``: ``order_placed``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from orders.admission import Overloaded, admit_order, admit_orders_somewhere, admit_read, order_answered

ORDERS_PATH = "/api/v1/orders"
STOCK_PREFIX = "/api/v1/inventory/"


def overloaded_response(exc: Overloaded) -> HttpResponse:
    response = JsonResponse({"error": {"code": "overloaded", "detail": exc.detail}}, status=503)
    response["Retry-After"] = str(exc.retry_after)
    # A refusal is the gate working, not a server error: keep Django from logging each one at ERROR
    # (under a shed that was an ERROR line per request). The http logger's line for the request and
    # api_requests_shed_total still record it.
    response._has_been_logged = True  # type: ignore[attr-defined] - django.utils.log.log_response's marker
    return response


class AdmissionGate:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        ticket = None
        try:
            if request.method == "POST" and request.path.rstrip("/") == ORDERS_PATH:
                region = _region_of(request)
                if region is None:
                    admit_orders_somewhere()
                else:
                    ticket = admit_order(region)
            elif request.method == "GET" and request.path.startswith(STOCK_PREFIX):
                admit_read("get_stock")
        except Overloaded as exc:
            return overloaded_response(exc)
        if ticket is None:
            return self.get_response(request)
        request.admission_ticket = ticket  # type: ignore[attr-defined] - the view says when it placed the order
        try:
            return self.get_response(request)
        finally:
            order_answered(ticket)


def _region_of(request: HttpRequest) -> str | None:
    try:
        region = json.loads(request.body).get("region")
    except (ValueError, AttributeError):
        return None
    return region if isinstance(region, str) else None
