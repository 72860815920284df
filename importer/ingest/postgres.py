"""PostgreSQL: COPY each chunk into an unlogged staging table, then one upsert statement.

The merge follows DESIGN.md §9: `INSERT .. SELECT DISTINCT ON (sku_key) .. ORDER BY sku_key,
rownum DESC ON CONFLICT .. DO UPDATE .. WHERE (..) IS DISTINCT FROM (..)`, so the last row of
a SKU wins, unchanged products are not rewritten, and `xmax = 0` tells created from updated.
"""

from __future__ import annotations

import io
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from importer.ingest.backend import MergeCounts
from importer.ingest.validate import StagedRows

MERGE_LOCK_KEY = 742_001  # pg_advisory_xact_lock key that serialises merges across workers
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
STAGING_COLUMNS = ("UNLOGGED TABLE {table} (rownum bigint NOT NULL, sku text NOT NULL, sku_key text NOT NULL, "
                   "name text NOT NULL, description text NOT NULL, is_active boolean)")
_ACTIVE = {True: "t", False: "f", None: "\\N"}
MERGE_WORK_MEM = "256MB"  # the DISTINCT ON sort of 500k staged rows then stays in memory instead of spilling to disk
HEARTBEAT_DURING_MERGE = True


def _escaped(values: list[str]) -> list[str]:
    """Escape a whole column in one pass over one string: NUL never occurs in a value (validation rejects it)."""
    joined = "\x00".join(values)
    if not any(special in joined for special, _ in _ESCAPES):
        return values
    for old, new in _ESCAPES:
        joined = joined.replace(old, new)
    return joined.split("\x00")


def _copy_text(rows: StagedRows) -> str:
    """COPY's text format: cheaper to build than CSV and exact for any string."""
    columns = [list(map(str, rows.rownum))]
    columns += [_escaped(values) for values in (rows.sku, rows.sku_key, rows.name, rows.description)]
    columns.append([_ACTIVE[value] for value in rows.is_active])
    return "".join(line + "\n" for line in map("\t".join, zip(*columns)))


def stage(connection: Connection, table: str, rows: StagedRows) -> None:
    if not rows:
        return
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.copy_expert(f"COPY {table} FROM STDIN", io.StringIO(_copy_text(rows)))


def _merge_sql(table: str, has_active: bool) -> str:
    compared = ["sku", "name", "description"] + (["is_active"] if has_active else [])
    assignments = ", ".join(f"{column} = excluded.{column}" for column in compared)
    current = ", ".join(f"products.{column}" for column in compared)
    incoming = ", ".join(f"excluded.{column}" for column in compared)
    active = "is_active" if has_active else "true"
    return f"""
        WITH latest AS (
            SELECT DISTINCT ON (sku_key) sku, sku_key, name, description, is_active
            FROM {table} ORDER BY sku_key, rownum DESC
        ), merged AS (
            INSERT INTO products (sku, sku_key, name, description, is_active, created_at, updated_at)
            SELECT sku, sku_key, name, description, {active}, now(), now() FROM latest
            ON CONFLICT (sku_key) DO UPDATE SET {assignments}, updated_at = excluded.updated_at
            WHERE ({current}) IS DISTINCT FROM ({incoming})
            RETURNING (xmax = 0) AS inserted
        )
        SELECT (SELECT count(*) FROM latest),
               count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
        FROM merged"""


def merge(connection: Connection, table: str, has_active: bool) -> MergeCounts:
    """Runs in the caller's transaction, after any other import's merge has committed."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MERGE_LOCK_KEY})
    connection.execute(text(f"SET LOCAL work_mem = '{MERGE_WORK_MEM}'"))
    distinct, created, updated = connection.execute(text(_merge_sql(table, has_active))).one()
    return MergeCounts(created=created, updated=updated, unchanged=distinct - created - updated)


def begin_merge(connection: Connection) -> None:
    """PostgreSQL needs nothing before the merge: the advisory lock is taken in merge()."""


def after_merge(connection: Connection) -> None:
    """Fresh statistics keep the planner right after a large change; cheap (it samples)."""
    connection.execute(text("ANALYZE products"))


def interrupt(dbapi_connection: Any) -> None:
    dbapi_connection.cancel()
