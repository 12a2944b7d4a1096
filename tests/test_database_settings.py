"""How statements reach PostgreSQL: bound by the server, prepared once they repeat (config/database.py)."""

from __future__ import annotations

import pytest
from django.db import connections

from config.database import ALL_ALIASES, database_settings, statement_options


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
