"""The deferred part of an import on PostgreSQL: adding its rows to the trigram search indexes.

Maintaining the three pg_trgm GIN indexes row by row costs about ten times the rest of an
import, so the merge writes new and changed products with `search_indexed = false`, outside
the (partial) indexes, and this adds them afterwards in small batches. Searches stay exact
meanwhile: the rows not yet indexed are scanned (see importer.products._text_match), which
only makes a search slower until the batches catch up. The flag is the whole state, so a
worker that dies loses nothing: the next run, or the periodic check, takes up the rest.
SQLite has no such indexes and never leaves a row out.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from importer.db import get_engine
from importer.models import Product

log = logging.getLogger(__name__)

RUN_LOCK_KEY = 742_002  # one run at a time across workers; a second one would only compete for the same rows
BATCH_ROWS = 2000  # about a tenth of a second each: row locks are held briefly, progress is committed often
_INDEX_BATCH = text("""
    UPDATE products SET search_indexed = true WHERE id IN (
        SELECT id FROM products WHERE NOT search_indexed ORDER BY id LIMIT :rows FOR UPDATE SKIP LOCKED)""")


def pending_count(session: Session) -> int:
    """Products that searches must still scan for (an index-only count of a partial index)."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    return session.execute(select(func.count()).select_from(Product).where(~Product.search_indexed)).scalar_one()


def index_pending() -> int:
    """Add every product left out so far; returns how many. Rows an import's merge holds are skipped
    (SKIP LOCKED), and that import queues another run when it commits.
    """
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        return 0
    with engine.connect() as guard:
        # A session lock: released by PostgreSQL itself if this process dies.
        running_elsewhere = not guard.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": RUN_LOCK_KEY}).scalar()
        guard.commit()
        if running_elsewhere:
            return 0
        try:
            return _index_in_batches(engine)
        finally:
            guard.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RUN_LOCK_KEY})
            guard.commit()


def _refresh_statistics(engine: Engine, vacuum: bool) -> None:
    """The planner must know how many rows are pending (a merge leaves that to this task, off the
    import's clock); VACUUM afterwards clears the row versions the batches left behind.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM (ANALYZE) products" if vacuum else "ANALYZE products"))


def _index_in_batches(engine: Engine) -> int:
    started, total = time.monotonic(), 0
    with engine.connect() as connection:
        if connection.execute(select(Product.id).where(~Product.search_indexed).limit(1)).first() is None:
            return 0
    _refresh_statistics(engine, vacuum=False)
    while True:
        with engine.begin() as connection:
            indexed = connection.execute(_INDEX_BATCH, {"rows": BATCH_ROWS}).rowcount
        if not indexed:
            break
        total += indexed
    _refresh_statistics(engine, vacuum=True)
    if total:
        log.info("search index: %d products added in %.1fs", total, time.monotonic() - started)
    return total
