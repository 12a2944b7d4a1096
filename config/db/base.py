"""A thin PostgreSQL backend: one schema per alias, and health checks paced.

The schema is put on the connection's ``search_path`` at connect time (a libpq
start-up option, so it costs no round trip) and created by
``prepare_database``, which ``migrate`` calls before it applies migrations.

``CONN_HEALTH_CHECKS`` makes Django send ``SELECT 1`` on every alias a request
uses, before its first query: a round trip per alias per request (two for a
POST). Here a connection proven usable (opened, or its check passed) less than
``HEALTH_CHECK_INTERVAL_S`` ago is not checked again, unless the server has hung
up on it: a PostgreSQL that shuts down, fails over or terminates a backend sends
the reason and closes the socket, so an idle connection's socket reads ready.
Looking costs a ``poll`` with no wait, not a round trip; a connection found so
gets the full check, fails it and is replaced before the request's first query.
A connection cut without a word (a network partition) still fails one request
inside the window, after which Django closes it.

A Celery worker has no requests, so Django never resets the check there: a
connection checked once was trusted until it failed a saga step (a retry with
backoff per worker thread after every PostgreSQL restart). Before each task the
worker looks at each of its thread's connections the same way, with no round
trip (``look_again_if_server_spoke``, called from ``config/celery.py``).
"""

from __future__ import annotations

import select
import time
from typing import Any

import psycopg._queries
from django.db.backends.postgresql import base

# psycopg converts a statement's ``%s`` placeholders to ``$n`` once per statement text, but keeps the result
# only for statements of at most 50 parameters (against ORMs' ``VALUES (…), (…)`` of any length). An order's
# placement, one statement of an order, its lines, its history row and its message, has 56 with three lines:
# converted again for every POST (60 µs here). Its shapes are few (one per number of lines); the cache stays
# 128 entries of at most 4 KB of text each.
# A private setting of the pinned psycopg: should a release drop it, statements are converted as psycopg decides.
CACHED_STATEMENT_PARAMS = 200
if isinstance(getattr(psycopg._queries, "MAX_CACHED_STATEMENT_PARAMS", None), int):
    psycopg._queries.MAX_CACHED_STATEMENT_PARAMS = max(
        psycopg._queries.MAX_CACHED_STATEMENT_PARAMS, CACHED_STATEMENT_PARAMS
    )


class DatabaseWrapper(base.DatabaseWrapper):
    _proven_at = float("-inf")

    @property
    def schema(self) -> str:
        return str(self.settings_dict.get("SCHEMA") or "public")

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        search_path = f"-c search_path={self.schema}"
        existing = params.get("options")
        params["options"] = f"{existing} {search_path}" if existing else search_path
        return params

    @property
    def health_check_interval(self) -> float:
        return float(self.settings_dict.get("HEALTH_CHECK_INTERVAL_S", 0.0))

    def connect(self) -> None:
        super().connect()
        self._proven_at = time.monotonic()

    def close_if_health_check_failed(self) -> None:
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if time.monotonic() - self._proven_at < self.health_check_interval and not self._server_spoke():
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
        if self.connection is not None:
            self._proven_at = time.monotonic()

    def look_again_if_server_spoke(self) -> None:
        """Between two units of work outside a request (a Celery task): if the server hung up on this idle
        connection, have the next cursor run the full check, fail it and open a new session."""
        if self.connection is not None and not self.in_atomic_block and self._server_spoke():
            self.health_check_done = False
            self._proven_at = float("-inf")

    def _server_spoke(self) -> bool:
        """Whether the server wrote to this idle connection unasked: between two requests nothing is
        pending on it, so anything readable is the server's goodbye (or an end of file)."""
        try:
            poller = select.poll()  # not select(): a descriptor above 1023 would be out of its range
            poller.register(self.connection.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError, base.Database.Error):  # closed already
            return True

    def prepare_database(self) -> None:
        super().prepare_database()
        with self.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
