"""The CSV export core: the import format, quoting, Unicode, the safe variant, one snapshot."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest
from sqlalchemy import insert

from importer import export, products
from importer.db import session_scope
from importer.models import Product, ProductCreate
from importer.products import ProductFilter

TRICKY = [
    ("Q-1", "Comma, and \"quotes\"", "He said \"hi\", then left"),
    ("Q-2", "Line breaks", "CRLF\r\ninside\nand LF\rand CR"),
    ("Q-3", "Ünïcødé ✓ 漢字", "emoji 🎉 and ß"),
    ("Q-4", "  padded  ", "  leading and trailing spaces  "),
    ("Q-5", "Empty description", ""),
    ("=SUM(A1)", "+cmd", "@import"),
    ("-1", "Minus", "\tTabbed"),
]


def _export(filters: ProductFilter = ProductFilter(), safe: bool = False) -> str:
    return b"".join(export.stream_csv(filters, safe=safe)).decode("utf-8")


@pytest.fixture
def tricky_catalogue() -> None:
    with session_scope() as session:
        for index, (sku, name, description) in enumerate(TRICKY):
            products.create_product(session, ProductCreate(sku=sku, name=name, description=description,
                                                           is_active=index % 2 == 0))


@pytest.mark.usefixtures("tricky_catalogue")
def test_export_parses_back_to_exactly_the_stored_values() -> None:
    with session_scope() as session:
        stored = [(p.sku, p.name, p.description, "true" if p.is_active else "false")
                  for p in products.iter_products(session)]
    rows = list(csv.reader(io.StringIO(_export(), newline="")))
    assert rows[0] == list(export.CSV_COLUMNS)
    assert [tuple(row) for row in rows[1:]] == stored
    assert {row[0]: row[2] for row in stored}["Q-2"] == "CRLF\r\ninside\nand LF\rand CR"


@pytest.mark.usefixtures("tricky_catalogue")
def test_rows_end_in_crlf_and_only_fields_that_need_it_are_quoted() -> None:
    lines = _export(ProductFilter(sku="q-")).split("\r\n")
    assert lines[1] == 'Q-1,"Comma, and ""quotes""","He said ""hi"", then left",true'
    assert lines[2] == 'Q-2,Line breaks,"CRLF'
    assert lines[3] == 'inside\nand LF\rand CR",false'
    assert lines[6] == "Q-5,Empty description,,true"


@pytest.mark.usefixtures("tricky_catalogue")
def test_plain_export_keeps_formula_like_cells_as_they_are() -> None:
    text = _export()
    assert "\r\n=SUM(A1),+cmd,@import,false\r\n" in text
    assert "\r\n-1,Minus,\tTabbed,true\r\n" in text


@pytest.mark.usefixtures("tricky_catalogue")
def test_safe_export_prefixes_formula_like_cells_and_starts_with_a_bom() -> None:
    text = _export(safe=True)
    assert text.startswith("\ufeffsku,name,description,is_active\r\n")
    assert "\r\n'=SUM(A1),'+cmd,'@import,false\r\n" in text
    assert "\r\n'-1,Minus,'\tTabbed,true\r\n" in text
    assert "\r\nQ-3,Ünïcødé ✓ 漢字,emoji 🎉 and ß,true\r\n" in text


@pytest.mark.parametrize(
    "value, expected",
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"), ("a=b", "a=b"), ("", "")],
)
def test_spreadsheet_safe(value: str, expected: str) -> None:
    assert export.spreadsheet_safe(value) == expected


def test_export_filename() -> None:
    assert export.export_filename(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "products-20260102-030405.csv"


def test_empty_catalogue_exports_the_header_only() -> None:
    assert _export() == "sku,name,description,is_active\r\n"


def _bulk_insert(count: int) -> None:
    with session_scope() as session:
        session.execute(insert(Product), [
            {"sku": f"B-{n:05}", "sku_key": f"b-{n:05}", "name": f"Bulk {n}", "description": "x" * 200,
             "is_active": True} for n in range(count)
        ])


def test_a_large_export_streams_in_chunks_and_sees_one_snapshot() -> None:
    _bulk_insert(5000)
    chunks = export.stream_csv(ProductFilter())
    first = next(chunks)
    assert len(first) < 5000 * 200, "the first chunk comes before the whole catalogue is read"
    with session_scope() as session:
        products.delete_all_products(session)
    rest = b"".join(chunks)
    rows = list(csv.reader(io.StringIO((first + rest).decode("utf-8"), newline="")))
    assert len(rows) == 5001
    assert rows[-1][0] == "B-04999"


def _catalogue_rows() -> list[tuple[str, str, str, bool]]:
    with session_scope() as session:
        return sorted((p.sku, p.name, p.description, p.is_active) for p in products.iter_products(session))


@pytest.mark.usefixtures("tricky_catalogue")
def test_export_then_import_gives_the_same_catalogue_byte_for_byte() -> None:
    from importer import jobs
    from importer.models import UploadStatus

    _bulk_insert(50)
    before, exported = _catalogue_rows(), b"".join(export.stream_csv(ProductFilter()))
    with session_scope() as session:
        products.delete_all_products(session)
    stored = jobs.store_upload([exported[:1000], exported[1000:]], "export.csv")
    with session_scope() as session:
        upload_id = jobs.create_upload(session, filename="export.csv", stored_path=stored.path,
                                       size_bytes=stored.size_bytes, user_id=None).id
    jobs.run_import(upload_id)  # type: ignore[arg-type]
    with session_scope() as session:
        upload = jobs.get_upload(session, upload_id)  # type: ignore[arg-type]
        assert (upload.status, upload.failed_rows, upload.created) == (UploadStatus.completed.value, 0, len(before))
    assert _catalogue_rows() == before
    assert b"".join(export.stream_csv(ProductFilter())) == exported
