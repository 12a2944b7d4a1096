"""Keep the process's environment out of a request's WSGI environ.

granian follows CGI's convention and starts every request's environ from a copy of ``os.environ``, so
``request.META`` held ``DATABASE_URL``, ``DJANGO_SECRET_KEY`` and the rest (which an error report prints),
and a process variable named ``HTTP_*`` (``HTTP_PROXY``) looked like a header the client sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def without_process_environment(app: WSGIApp) -> WSGIApp:
    """Drop from each request's environ every variable the process's environment gave it (same name, same
    value); what the server sets for the request (method, path, headers, ``wsgi.*``) stays."""
    snapshot: dict[str, str] | None = None

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        nonlocal snapshot
        if snapshot is None:  # after the server has taken its own copy
            snapshot = dict(os.environ)
        for name, value in snapshot.items():
            if environ.get(name) == value:
                del environ[name]
        return app(environ, start_response)

    return application
