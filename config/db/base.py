"""A thin PostgreSQL backend: one schema per alias.

The schema is put on the connection's ``search_path`` at connect time (a libpq
start-up option, so it costs no round trip) and created by
``prepare_database``, which ``migrate`` calls before it applies migrations.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def schema(self) -> str:
        return str(self.settings_dict.get("SCHEMA") or "public")

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        search_path = f"-c search_path={self.schema}"
        existing = params.get("options")
        params["options"] = f"{existing} {search_path}" if existing else search_path
        return params

    def prepare_database(self) -> None:
        super().prepare_database()
        with self.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
