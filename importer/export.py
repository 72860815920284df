"""The catalogue as CSV, streamed in keyset batches so a million rows never sit in memory.

The plain export is the import format (`sku,name,description,is_active`, CRLF row ends,
quoted fields keep their line breaks), so exporting and importing it again gives the same
catalogue. The spreadsheet-safe variant is for people: cells that a spreadsheet would run
as a formula are prefixed with `'`, and a BOM tells Excel the file is UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import text
from sqlmodel import Session

from importer.db import session_scope
from importer.models import Product, utcnow
from importer.products import ProductFilter, iter_products

CSV_COLUMNS = ("sku", "name", "description", "is_active")
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
UTF8_BOM = "\ufeff"
FLUSH_AT_CHARS = 64 * 1024


def spreadsheet_safe(value: str) -> str:
    """Neutralise CSV injection: a leading `'` makes spreadsheets show the text, not run it."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def export_filename(now: datetime | None = None) -> str:
    return f"products-{(now or utcnow()):%Y%m%d-%H%M%S}.csv"


def _row(product: Product, safe: bool) -> list[str]:
    cells = [product.sku, product.name, product.description]
    if safe:
        cells = [spreadsheet_safe(cell) for cell in cells]
    return [*cells, "true" if product.is_active else "false"]


def _begin_snapshot(session: Session) -> None:
    """One consistent view for the whole export, even while an import commits halfway through."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        session.execute(text("SET TRANSACTION READ ONLY"))
    else:
        session.connection().exec_driver_sql("BEGIN")


def write_csv(session: Session, filters: ProductFilter, *, safe: bool = False) -> Iterator[str]:
    """Chunks of CSV text for every product matching `filters`, in case-insensitive SKU order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if safe:
        buffer.write(UTF8_BOM)
    writer.writerow(CSV_COLUMNS)
    for product in iter_products(session, filters):
        writer.writerow(_row(product, safe))
        if buffer.tell() >= FLUSH_AT_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def stream_csv(filters: ProductFilter, *, safe: bool = False) -> Iterator[bytes]:
    """UTF-8 CSV bytes from a session of its own, which lives exactly as long as the stream."""
    with session_scope() as session:
        _begin_snapshot(session)
        for chunk in write_csv(session, filters, safe=safe):
            yield chunk.encode("utf-8")
