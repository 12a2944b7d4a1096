"""What PostgreSQL counted for the benchmark's database: sessions opened, commits, rows written."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections

QUERY = (
    "SELECT sessions, xact_commit, xact_rollback, tup_inserted + tup_updated + tup_deleted "
    "FROM pg_stat_database WHERE datname = current_database()"
)


@dataclass(frozen=True)
class DatabaseActivity:
    sessions: int = 0
    commits: int = 0
    rollbacks: int = 0
    rows_written: int = 0

    def __sub__(self, other: DatabaseActivity) -> DatabaseActivity:
        return DatabaseActivity(
            sessions=self.sessions - other.sessions,
            commits=self.commits - other.commits,
            rollbacks=self.rollbacks - other.rollbacks,
            rows_written=self.rows_written - other.rows_written,
        )

    def per(self, orders: int) -> dict[str, float]:
        if not orders:
            return {}
        return {
            "sessions": round(self.sessions / orders, 2),
            "commits": round(self.commits / orders, 1),
            "rollbacks": round(self.rollbacks / orders, 2),
            "rows_written": round(self.rows_written / orders, 1),
        }


def database_activity() -> DatabaseActivity:
    """Counters as of now (PostgreSQL publishes them at each transaction's end, within a second)."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(QUERY)
        row = cursor.fetchone()
    return DatabaseActivity(*(int(value or 0) for value in row)) if row else DatabaseActivity()
