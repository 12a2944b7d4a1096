"""The benchmark's own database and Redis database, emptied before each run."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from messaging.api import redis_client

BENCH_MARK = "bench"
DEFAULT_REDIS_PORT = 6379


class NotIsolated(RuntimeError):
    """The benchmark would run on a database or Redis that something else uses."""


def bench_database() -> str:
    names = {db["NAME"] for db in settings.DATABASES.values()}
    if len(names) != 1 or not next(iter(names)).endswith(BENCH_MARK):
        raise NotIsolated(
            f"the benchmark needs one database of its own whose name ends in {BENCH_MARK!r}, got {sorted(names)}; "
            "run it through `make bench` or set DATABASE_URL=postgres://…/orders_platform_bench"
        )
    return next(iter(names))


def bench_redis_db() -> int:
    """The benchmark's Redis database: any but the platform's own (database 0 of the server on 6379)."""
    path = urlparse(settings.REDIS_URL).path.strip("/") or "0"
    if not path.isdigit() or (int(path) == 0 and bench_redis_port() == DEFAULT_REDIS_PORT):
        raise NotIsolated(
            f"the benchmark needs a Redis database of its own, got {settings.REDIS_URL}; "
            "run it through `make bench` or set REDIS_URL=redis://127.0.0.1:6379/8"
        )
    return int(path)


def bench_redis_port() -> int:
    return urlparse(settings.REDIS_URL).port or DEFAULT_REDIS_PORT


def _maintenance_connection() -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


@contextmanager
def exclusive_bench(name: str) -> Iterator[None]:
    """Hold a server-wide advisory lock named after the benchmark's database for the whole run:
    a second benchmark on the same database would drop it under the first."""
    with _maintenance_connection() as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [f"orders-bench:{name}"]).fetchone()
        if not row or not row[0]:
            raise NotIsolated(
                f"another benchmark is running on {name}; wait for it, or give this one a database of its own "
                "(make bench BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/orders_mine_bench)"
            )
        yield


def reset_database(name: str) -> None:
    """Drop and recreate the benchmark's database, with every module's schema migrated."""
    connections.close_all()
    with _maintenance_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    call_command("create_database", stdout=io.StringIO())
    call_command("migrate_all", verbosity=0, stdout=io.StringIO())


def reset_redis() -> None:
    redis_client().flushdb()
