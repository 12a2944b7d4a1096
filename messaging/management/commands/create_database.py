from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create every database the aliases point at, if it does not exist yet (schemas come with migrate)."

    def handle(self, *args: Any, **options: Any) -> None:
        seen: set[tuple[str, str, str]] = set()
        for alias, db in settings.DATABASES.items():
            target = (db["HOST"], str(db["PORT"]), db["NAME"])
            if target in seen:
                continue
            seen.add(target)
            with psycopg.connect(
                host=db["HOST"],
                port=db["PORT"],
                user=db["USER"],
                password=db["PASSWORD"] or None,
                dbname="postgres",
                autocommit=True,
            ) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone()
                if exists:
                    continue
                conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
                self.stdout.write(f"created database {db['NAME']} (first used by alias {alias})")
