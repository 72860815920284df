"""PostgreSQL: COPY each chunk into an unlogged staging table, then one merge statement.

The merge keeps the last row of each SKU (`DISTINCT ON (sku_key) .. ORDER BY sku_key, rownum
DESC`), updates the products that differ (`IS DISTINCT FROM`: unchanged ones are not rewritten)
and inserts the new ones, in one transaction.
"""

from __future__ import annotations

import io
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from importer import products
from importer.ingest.backend import MergeCounts
from importer.ingest.validate import StagedRows

_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
STAGING_COLUMNS = ("UNLOGGED TABLE {table} (rownum bigint NOT NULL, sku text NOT NULL, "
                   'sku_key text COLLATE "C" NOT NULL, name text NOT NULL, description text NOT NULL, is_active boolean)')
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


def _latest(table: str) -> str:
    """The last row of each SKU; sku_key sorts bytewise ("C"), several times cheaper than a locale."""
    return (f"SELECT DISTINCT ON (sku_key) sku, sku_key, name, description, is_active FROM {table} "
            "ORDER BY sku_key, rownum DESC")


def _update_sql(has_active: bool) -> str:
    """Changed products only; a change of sku, name or description takes the row out of the search index."""
    compared = ["sku", "name", "description"] + (["is_active"] if has_active else [])
    assignments = ", ".join(f"{column} = latest.{column}" for column in compared)
    current, incoming = (", ".join(f"{side}.{column}" for column in compared) for side in ("products", "latest"))
    searched = ", ".join(f"{{side}}.{column}" for column in ("sku", "name", "description"))
    same_text = f"({searched.format(side='products')}) IS NOT DISTINCT FROM ({searched.format(side='latest')})"
    return f"""
        UPDATE products SET {assignments}, updated_at = now(), search_indexed = products.search_indexed AND {same_text}
        FROM latest WHERE products.sku_key = latest.sku_key AND ({current}) IS DISTINCT FROM ({incoming})
        RETURNING 1"""


def _merge_sql(table: str, has_active: bool, has_products: bool) -> str:
    """One statement, so the staged rows are sorted and deduplicated once; both halves see the
    catalogue as it was before it (their rows are disjoint). New products start outside the search index.
    """
    active = "is_active" if has_active else "true"
    update = _update_sql(has_active) if has_products else "SELECT 1 WHERE false"
    new_only = "WHERE NOT EXISTS (SELECT FROM products WHERE products.sku_key = latest.sku_key)" if has_products else ""
    return f"""
        WITH latest AS MATERIALIZED ({_latest(table)}),
        updated AS ({update}),
        inserted AS (
            INSERT INTO products (sku, sku_key, name, description, is_active, created_at, updated_at, search_indexed)
            SELECT sku, sku_key, name, description, {active}, now(), now(), false FROM latest {new_only}
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM latest), (SELECT count(*) FROM inserted), (SELECT count(*) FROM updated)"""


def plan_merge(connection: Connection) -> None:
    """Planner settings for the merge, until the transaction ends."""
    connection.execute(text(f"SET LOCAL work_mem = '{MERGE_WORK_MEM}'"))
    connection.execute(text("SET LOCAL enable_seqscan = off"))


def merge(connection: Connection, table: str, has_active: bool) -> MergeCounts:
    """Runs in the caller's transaction, after any other import's merge has committed.

    An UPDATE of the changed and an INSERT of the new products: about a third cheaper than one
    INSERT .. ON CONFLICT, whose speculative insertion costs every row. The exclusive catalogue
    lock keeps single-product writes (which take it shared) from adding a SKU meanwhile, so an
    empty catalogue stays empty until the INSERT, which then need not look for existing SKUs.
    Sequential scans of products are ruled out: with statistics from a smaller catalogue the
    planner could probe it by scanning, and the table grows under the INSERT (quadratic time).
    """
    products.lock_catalogue(connection, exclusive=True)
    plan_merge(connection)
    has_products = connection.execute(text("SELECT EXISTS (SELECT FROM products)")).scalar_one()
    distinct, created, updated = connection.execute(text(_merge_sql(table, has_active, has_products))).one()
    return MergeCounts(created=created, updated=updated, unchanged=distinct - created - updated)


def begin_merge(connection: Connection) -> None:
    """PostgreSQL needs nothing before the merge: the advisory lock is taken in merge()."""


def after_merge(connection: Connection) -> None:
    """Fresh statistics keep the planner right after a large change; cheap (it samples)."""
    connection.execute(text("ANALYZE products"))


def interrupt(dbapi_connection: Any) -> None:
    dbapi_connection.cancel()
