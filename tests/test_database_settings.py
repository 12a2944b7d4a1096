"""How statements reach PostgreSQL: bound by the server, prepared once they repeat (config/database.py)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from celery.signals import task_prerun
from django.db import OperationalError, connections

from config.database import ALL_ALIASES, database_settings, statement_options
from config.db.base import DatabaseWrapper


def test_every_alias_binds_on_the_server_and_prepares_repeated_statements() -> None:
    databases = database_settings({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"})

    assert {alias: db["OPTIONS"] for alias, db in databases.items()} == {
        alias: {"server_side_binding": True, "prepare_threshold": 2} for alias in ALL_ALIASES
    }


def test_prepared_statements_can_be_turned_off_for_a_pooler_and_binding_moved_back_to_the_client() -> None:
    no_prepare = statement_options({"DB_PREPARE_THRESHOLD": "off"})
    assert no_prepare == {"server_side_binding": True, "prepare_threshold": None}
    assert statement_options({"DB_SERVER_SIDE_BINDING": "0"}) == {}


@pytest.mark.django_db(databases=["orders"])
def test_a_statement_run_repeatedly_is_prepared_on_its_connection() -> None:
    connection = connections["orders"]
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute("SELECT count(*) FROM orders_order WHERE state = %s", ["pending"])
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]

    assert "SELECT count(*) FROM orders_order WHERE state = $1" in prepared


def _own_connection(interval: float) -> DatabaseWrapper:
    """A connection of the orders alias outside the test's transaction, checked at most every ``interval`` s."""
    return DatabaseWrapper({**connections["orders"].settings_dict, "HEALTH_CHECK_INTERVAL_S": interval}, "orders")


def _requests(connection: DatabaseWrapper, count: int) -> list[int]:
    """Run ``count`` requests' worth of use (Django's end-of-request check, then a query); their backends."""
    pids = []
    for _ in range(count):
        connection.close_if_unusable_or_obsolete()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.append(cursor.fetchone()[0])
    return pids


@pytest.mark.django_db(databases=["orders"])
def test_a_connection_proven_usable_within_the_interval_is_not_checked_again() -> None:
    connection = _own_connection(60)
    checks = []
    usable = connection.is_usable
    connection.is_usable = lambda: checks.append(1) or usable()  # type: ignore[method-assign]
    try:
        _requests(connection, 3)
        assert checks == []  # just opened: proven

        connection._proven_at -= 61
        _requests(connection, 3)
        assert checks == [1]  # checked once, proven again

        every_time = _own_connection(0)
        every_time.is_usable = lambda: checks.append(1) or usable()  # type: ignore[method-assign]
        _requests(every_time, 3)
        assert len(checks) == 1 + 2  # the first request opens it; the next two are checked
        every_time.close()
    finally:
        connection.close()


def _terminate(pid: int) -> None:
    with connections["orders"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    # pg_terminate_backend only signals the backend; wait until it has said goodbye and gone.
    for _ in range(200):
        with connections["orders"].cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # the test's transaction would keep its first look
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} is still there")


@pytest.mark.django_db(databases=["orders"])
def test_a_connection_the_server_hung_up_on_is_replaced_before_the_next_request_uses_it() -> None:
    connection = _own_connection(60)
    try:
        (before,) = _requests(connection, 1)
        _terminate(before)  # what a restart, a failover or an administrator does to every session

        (after,) = _requests(connection, 1)  # inside the interval: no error, a new session

        assert after != before
    finally:
        connection.close()


@pytest.mark.django_db(databases=["orders"])
def test_a_connection_that_died_is_replaced_once_the_interval_has_passed() -> None:
    connection = _own_connection(60)
    try:
        (before,) = _requests(connection, 1)
        _terminate(before)
        connection._proven_at -= 61

        (after,) = _requests(connection, 1)

        assert after != before
    finally:
        connection.close()


@pytest.mark.django_db(databases=["orders"])
def test_a_worker_replaces_before_its_next_task_a_connection_the_server_hung_up_on() -> None:
    trusted, looked_at = _own_connection(60), _own_connection(60)
    try:
        # A worker thread's connections between two tasks: used, checked once, no request to reset the check.
        before = [_backend_of(trusted), _backend_of(looked_at)]
        for pid in before:
            _terminate(pid)

        with pytest.raises(OperationalError):
            _backend_of(trusted)  # what each worker thread's next saga step met after a PostgreSQL restart
        looked_at.look_again_if_server_spoke()  # what the worker now does before each task
        after = _backend_of(looked_at)

        assert after not in before
    finally:
        trusted.close()
        looked_at.close()


@pytest.mark.django_db(transaction=True, databases=["orders"])
def test_the_look_runs_before_every_celery_task_on_the_thread_s_connections() -> None:
    connection = connections["orders"]
    before = _backend_of(connection)
    untouched = _own_connection(60)
    _backend_of(untouched)  # a healthy connection: the look must cost it nothing
    untouched.is_usable = lambda: pytest.fail("a healthy connection was checked")  # type: ignore[method-assign]
    try:
        _terminate_from_outside(before)

        task_prerun.send(sender=None, task_id="t", task=None, args=(), kwargs={})
        after = _backend_of(connection)
        untouched.look_again_if_server_spoke()
        _backend_of(untouched)

        assert after != before
    finally:
        untouched.close()
        connection.close()  # a session broken by a failure here must not reach the next test


def _backend_of(connection: DatabaseWrapper) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _terminate_from_outside(pid: int) -> None:
    params = connections["orders"].get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(200):
            if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0] == 0:
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} is still there")


def test_a_url_names_a_unix_socket_directory_as_libpq_does() -> None:
    on_socket = database_settings({"DATABASE_URL": "postgres://postgres@%2Fvar%2Frun%2FPostgreSQL:5433/orders_x"})
    on_tcp = database_settings({"DATABASE_URL": "postgresql://app:s%40cret@db.internal:6432/orders_y"})

    assert {(db["HOST"], db["PORT"], db["NAME"]) for db in on_socket.values()} == {
        ("/var/run/PostgreSQL", "5433", "orders_x")
    }
    assert {(db["HOST"], db["PORT"], db["USER"], db["PASSWORD"]) for db in on_tcp.values()} == {
        ("db.internal", "6432", "app", "s@cret")
    }


def test_the_socket_a_url_names_is_the_one_libpq_connects_through() -> None:
    if not Path("/var/run/postgresql/.s.PGSQL.5432").exists():
        pytest.skip("no PostgreSQL socket in /var/run/postgresql on this machine")
    db = database_settings({"DATABASE_URL": "postgres://postgres@%2Fvar%2Frun%2Fpostgresql:5432/postgres"})["orders"]

    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]) as conn:
        (address,) = conn.execute("SELECT inet_server_addr()").fetchone()

    assert address is None  # NULL over a Unix socket, an address over TCP


def test_the_health_check_interval_comes_from_the_environment() -> None:
    url = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"}
    paced = database_settings(url)
    every_request = database_settings({**url, "DB_HEALTH_CHECK_INTERVAL_S": "0"})

    assert {db["HEALTH_CHECK_INTERVAL_S"] for db in paced.values()} == {1.0}
    assert {db["HEALTH_CHECK_INTERVAL_S"] for db in every_request.values()} == {0.0}
