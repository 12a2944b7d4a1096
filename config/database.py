"""DATABASES from the environment: one alias per module, each in its own schema.

``DATABASE_URL`` (or the libpq ``PG*`` variables) names the shared database.
``DATABASE_URL_<ALIAS>`` moves one module to its own database or server:
splitting a module out is a settings change, not a code change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import unquote, urlparse

# Module aliases in dependency order; each has a schema of the same name.
MODULE_ALIASES: tuple[str, ...] = (
    "orders",
    "inventory",
    "payments",
    "fraud",
    "compliance",
    "shipping",
    "messaging",
)
ALL_ALIASES: tuple[str, ...] = ("default", *MODULE_ALIASES)


def _from_url(url: str) -> dict[str, str]:
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"unsupported database URL scheme {parsed.scheme!r}")
    return {
        "NAME": unquote(parsed.path.lstrip("/")) or "orders_platform",
        "USER": unquote(parsed.username or "postgres"),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": _host(parsed.netloc) or parsed.hostname or "127.0.0.1",
        "PORT": str(parsed.port or 5432),
    }


def _host(netloc: str) -> str:
    """A Unix-socket directory, written as libpq's URIs write it: percent-encoded in the host part
    (``postgres://postgres@%2Fvar%2Frun%2Fpostgresql/orders``). Empty for a host name or address."""
    host = netloc.rpartition("@")[2].partition(":")[0]
    return unquote(host) if host.upper().startswith("%2F") else ""


def _from_pg_env(env: Mapping[str, str]) -> dict[str, str]:
    return {
        "NAME": env.get("PGDATABASE", "orders_platform"),
        "USER": env.get("PGUSER", "postgres"),
        "PASSWORD": env.get("PGPASSWORD", ""),
        "HOST": env.get("PGHOST", "127.0.0.1"),
        "PORT": env.get("PGPORT", "5432"),
    }


def database_settings(env: Mapping[str, str] = os.environ) -> dict[str, dict]:
    base_url = env.get("DATABASE_URL")
    base = _from_url(base_url) if base_url else _from_pg_env(env)
    conn_max_age = int(env.get("DB_CONN_MAX_AGE", "300"))
    health_check_interval = float(env.get("DB_HEALTH_CHECK_INTERVAL_S", "1"))
    options = statement_options(env)
    # Lets two test runs share one PostgreSQL server without sharing databases.
    test_suffix = env.get("TEST_DB_SUFFIX", "")
    databases: dict[str, dict] = {}
    for alias in ALL_ALIASES:
        own_url = env.get(f"DATABASE_URL_{alias.upper()}")
        target = _from_url(own_url) if own_url else dict(base)
        databases[alias] = {
            "ENGINE": "config.db",
            **target,
            "SCHEMA": "public" if alias == "default" else alias,
            "CONN_MAX_AGE": conn_max_age,
            "CONN_HEALTH_CHECKS": True,
            "HEALTH_CHECK_INTERVAL_S": health_check_interval,
            "OPTIONS": dict(options),
            # Each alias gets its own test database so that every alias is
            # migrated on its own, exactly as in production.
            # No alias needs another created first: a test run asking only for one alias (one test
            # picked with -k) would otherwise stop at Django's default dependency on "default".
            "TEST": {"NAME": f"test_{target['NAME']}_{alias}{test_suffix}", "DEPENDENCIES": []},
        }
    return databases


def statement_options(env: Mapping[str, str] = os.environ) -> dict[str, object]:
    """How statements travel: parameters bound by the server, and statements run often prepared once per
    connection, so PostgreSQL stops parsing and planning the saga's few dozen statements for every order.

    ``DB_PREPARE_THRESHOLD``: executions of one statement on a connection before it is prepared; ``off``
    when a transaction-mode pooler (PgBouncer without ``max_prepared_statements``) sits in between.
    ``DB_SERVER_SIDE_BINDING=0`` goes back to binding on the client (and no prepared statements).
    """
    if env.get("DB_SERVER_SIDE_BINDING", "1") == "0":
        return {}
    threshold = env.get("DB_PREPARE_THRESHOLD", "2")
    return {"server_side_binding": True, "prepare_threshold": None if threshold == "off" else int(threshold)}
