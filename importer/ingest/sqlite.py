"""SQLite: executemany into a staging table whose rownum is the rowid, then one upsert.

SQLite cannot tell an inserted row from an updated one, so the merge first counts the
incoming SKUs that exist; it runs under BEGIN IMMEDIATE, so nothing can change in between.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from importer.ingest.backend import MergeCounts
from importer.ingest.validate import ParsedChunk
from importer.models import utcnow

STAGING_COLUMNS = ("TABLE {table} (rownum INTEGER PRIMARY KEY, sku TEXT NOT NULL, sku_key TEXT NOT NULL, "
                   "name TEXT NOT NULL, description TEXT NOT NULL, is_active BOOLEAN)")
HEARTBEAT_DURING_MERGE = False  # the merge holds SQLite's only write lock; a heartbeat would wait for it
STAGES_VERBATIM = False  # every chunk is inserted from Python


def stage(connection: Connection, table: str, chunk: ParsedChunk) -> None:
    if not chunk.rows:
        return
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?)", zip(*chunk.rows.columns()))


def begin_merge(connection: Connection) -> None:
    """Take the write lock first: a deferred transaction that reads, then writes, can fail with SQLITE_BUSY."""
    connection.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


def _merge_sql(table: str, has_active: bool) -> str:
    compared = ["sku", "name", "description"] + (["is_active"] if has_active else [])
    assignments = ", ".join(f"{column} = excluded.{column}" for column in compared)
    changed = " OR ".join(f"products.{column} IS NOT excluded.{column}" for column in compared)
    active = "is_active" if has_active else "1"
    return f"""
        INSERT INTO products (sku, sku_key, name, description, is_active, created_at, updated_at)
        SELECT sku, sku_key, name, description, {active}, :now, :now FROM {table}
        WHERE rownum IN (SELECT max(rownum) FROM {table} GROUP BY sku_key)
        ON CONFLICT (sku_key) DO UPDATE SET {assignments}, updated_at = excluded.updated_at
        WHERE {changed}"""


def merge(connection: Connection, table: str, has_active: bool) -> MergeCounts:
    distinct = connection.execute(text(f"SELECT count(DISTINCT sku_key) FROM {table}")).scalar_one()
    existing = connection.execute(text(
        f"SELECT count(*) FROM products WHERE sku_key IN (SELECT sku_key FROM {table})")).scalar_one()
    now = utcnow().replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    changed = connection.execute(text(_merge_sql(table, has_active)), {"now": now}).rowcount
    created = distinct - existing
    updated = changed - created
    return MergeCounts(created=created, updated=updated, unchanged=existing - updated)


def interrupt(dbapi_connection: Any) -> None:
    dbapi_connection.interrupt()
