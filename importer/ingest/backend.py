"""What the import pipeline needs from a database, and the choice of implementation."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class MergeCounts:
    created: int
    updated: int
    unchanged: int


def staging_table(upload_id: int) -> str:
    """One table per import: dropping it is instant, and it outlives a crashed worker."""
    return f"import_staging_{int(upload_id)}"


def for_dialect(name: str) -> ModuleType:
    if name == "postgresql":
        from importer.ingest import postgres

        return postgres
    from importer.ingest import sqlite

    return sqlite


def create_staging(connection: Connection, table: str) -> None:
    """A fresh, empty staging table, shaped as the backend wants it (STAGING_COLUMNS)."""
    drop_staging(connection, table)
    columns = for_dialect(connection.dialect.name).STAGING_COLUMNS
    connection.execute(text(f"CREATE {columns.format(table=table)}"))


def drop_staging(connection: Connection, table: str) -> None:
    connection.execute(text(f"DROP TABLE IF EXISTS {table}"))


def count_staged(connection: Connection, table: str) -> int | None:
    """None when the table is gone; an unlogged PostgreSQL table is emptied, not dropped, by a crash."""
    if not inspect(connection).has_table(table):
        return None
    return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
