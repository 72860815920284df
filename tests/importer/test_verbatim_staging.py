"""Chunks staged verbatim (COPY .. CSV of the file's own bytes) on PostgreSQL: only where
PostgreSQL's CSV parser reads exactly what pandas read, and row by row otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from importer.db import get_engine
from importer.ingest import backend
from importer.ingest.reader import as_utf8, iter_chunks, sniff
from importer.ingest.validate import ParsedChunk, parse_chunk
from tests.importer.ingest_support import DATA, catalogue, run_bytes

postgres_only = pytest.mark.skipif(get_engine().dialect.name != "postgresql", reason="PostgreSQL staging")


def _chunk(data: bytes, tmp_path: Path) -> ParsedChunk:
    path = tmp_path / "chunk.csv"
    path.write_bytes(data)
    layout = sniff(path)
    (rows, _end), = iter_chunks(path, layout.data_offset, layout.delimiter)
    return parse_chunk(as_utf8(rows, layout.encoding), layout, 0, verbatim_ok=True)


def test_the_reference_sample_qualifies(tmp_path: Path) -> None:
    chunk = _chunk((DATA / "products_1000.csv").read_bytes(), tmp_path)
    assert chunk.verbatim is not None
    assert (chunk.verbatim.columns, chunk.verbatim.count, chunk.verbatim.first_rownum) == (
        ("name", "sku", "description"), 1000, 0)


@pytest.mark.parametrize("data", [
    b'sku,name\r\nA-1,12" ruler\r\n',  # a quote inside an unquoted value: COPY would open a quoted section
    b'sku,name\r\nA-1,"ab"c"d"\r\n',  # a quote that closes before the field ends
    b'sku,name\r\n A-1,Padded\r\n',  # the SKU is trimmed in Python
    b'sku,name\r\nA-1,Padded \r\n',  # so is the name
    b'sku,name\r\n\xc3\x9cBER-1,Umlaut\r\n',  # lower() and casefold() differ beyond ASCII
    b'sku,name\r\nA-1,Mixed\nA-2,Line ends\r\n',  # COPY wants one kind of line end
    b'sku,name\r\nA-1,Lone\rreturn\r\n',
    b'sku,name,colour\r\nA-1,Extra,red\r\n',  # an ignored column
    b'sku,name,is_active\r\nA-1,Flag,yes\r\n',
    b'sku,name\r\nA-1,Fine\r\n,No SKU\r\n',  # a rejected row
])
def test_chunks_that_could_read_differently_do_not_qualify(data: bytes, tmp_path: Path) -> None:
    assert _chunk(data, tmp_path).verbatim is None


@pytest.mark.parametrize("data, expected", [
    (b'name;sku;description\nTape;T-1;"say ""hi""; twice"\n',  # escaped quotes, other delimiter, LF
     {"t-1": ("T-1", "Tape", 'say "hi"; twice', True)}),
    (b'sku\tname\tdescription\r\nT-2\tTab\t"multi\r\nline"\r\nT-3\tEmpty\t""\r\nT-4\tBare\t\r\n',
     {"t-2": ("T-2", "Tab", "multi\r\nline", True), "t-3": ("T-3", "Empty", "", True),
      "t-4": ("T-4", "Bare", "", True)}),
    (b'sku,name\r\nT-5,"Last, no line break"', {"t-5": ("T-5", "Last, no line break", "", True)}),
])
def test_plain_chunks_qualify_and_land_exactly(data: bytes, expected: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    assert _chunk(data, tmp_path).verbatim is not None
    assert run_bytes(data).status == "completed"
    assert catalogue() == expected


@postgres_only
@pytest.mark.parametrize("disagreement", ["row count", "refused"])
def test_a_chunk_postgres_reads_differently_is_staged_row_by_row(disagreement: str, tmp_path: Path) -> None:
    """Were COPY ever to count other rows than pandas, or refuse the bytes, the chunk goes the row-by-row way."""
    from importer.ingest import postgres

    chunk = _chunk((DATA / "products_100.csv").read_bytes(), tmp_path)
    assert chunk.verbatim is not None
    changes = {"count": chunk.verbatim.count + 1} if disagreement == "row count" else {"data": b"a,b,c,d,e\r\n"}
    disagreeing = replace(chunk, verbatim=replace(chunk.verbatim, **changes))
    with get_engine().begin() as connection:
        backend.create_staging(connection, "verbatim_check")
        postgres.stage(connection, "verbatim_check", disagreeing)
        staged = connection.execute(text(
            "SELECT rownum, sku, sku_key, name, description FROM verbatim_check ORDER BY rownum")).all()
        backend.drop_staging(connection, "verbatim_check")
    rows = chunk.rows
    assert staged == list(zip(rows.rownum, rows.sku, rows.sku_key, rows.name, rows.description))
