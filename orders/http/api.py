"""The NinjaAPI object: one error shape for every failure."""

from __future__ import annotations

import logging

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from messaging.api import BusinessError
from orders.http import fulfilment
from orders.http.auth import ClientToken
from orders.http.routes import router, stock_router

log = logging.getLogger("orders.http")
DATABASE_RETRY_AFTER_S = 1

api = NinjaAPI(
    title="Order platform",
    version="1",
    urls_namespace="api-v1",
    docs_url="/docs",
    auth=ClientToken(),
    description="Orders are accepted here and completed by a saga across inventory, payments, fraud, "
    "compliance and shipping. Amounts are integers in minor units of the order's currency.",
)
api.add_router("/orders", router)
api.add_router("/inventory", stock_router)
api.add_router("/shipments", fulfilment.router)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable",
    429: "too_many_requests",
    503: "unavailable",
}


def _error(request: HttpRequest, status: int, code: str, detail: object) -> HttpResponse:
    return api.create_response(request, {"error": {"code": code, "detail": detail}}, status=status)


@api.exception_handler(BusinessError)
def business_error(request: HttpRequest, exc: BusinessError) -> HttpResponse:
    return _error(request, exc.http_status, exc.code, exc.detail)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors]
    return _error(request, 422, "invalid_request", fields)


@api.exception_handler(AuthenticationError)
def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error(request, 401, "unauthorized", "a valid bearer token is required")
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, _CODES.get(exc.status_code, "error"), str(exc))


@api.exception_handler(OperationalError)
def database_unavailable(request: HttpRequest, exc: OperationalError) -> HttpResponse:
    """The database refused or lost the session (too many clients, a restart, a failover, a lock or statement
    timeout). The same request may be sent again: a placement with its ``Idempotency-Key`` is stored at most
    once (a repeat replays it, should it have committed before a later read failed), and reads and cancels
    are idempotent. A 503 with ``Retry-After`` says so; a 500 said only that something broke."""
    log.warning("database unavailable for %s %s: %s", request.method, request.path, str(exc).strip()[:200])
    response = _error(request, 503, "database_unavailable", "the database is unavailable; send the request again")
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    # The warning says what failed: keep Django from adding an ERROR line for the 503, as the
    # admission gate's refusals do (orders/http/admission_gate.py).
    response._has_been_logged = True  # type: ignore[attr-defined] - django.utils.log.log_response's marker
    return response
