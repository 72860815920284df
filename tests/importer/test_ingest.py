"""The import pipeline on real files, run in this process against the real database."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select, text

from importer.db import get_engine, session_scope
from importer.ingest import reader
from importer.models import OutboxEvent, Product, ProductCreate
from importer.products import create_product
from tests.importer.ingest_support import DATA, catalogue, csv_bytes, errors_of, expected_from_csv, run_bytes

HEADER = ["sku", "name", "description"]


def _seed(*products: tuple[str, str, str, bool]) -> None:
    with session_scope() as session:
        for sku, name, description, active in products:
            create_product(session, ProductCreate(sku=sku, name=name, description=description, is_active=active))


def _reference_rows() -> list[dict[str, str]]:
    with (DATA / "products_1000.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_reference_sample_lands_exactly() -> None:
    upload = run_bytes((DATA / "products_1000.csv").read_bytes(), "products_1000.csv")
    assert (upload.status, upload.stage, upload.progress) == ("completed", "done", 100.0)
    assert (upload.total_rows, upload.processed_rows, upload.failed_rows) == (1000, 1000, 0)
    assert (upload.created, upload.updated, upload.unchanged) == (999, 0, 0)
    assert (upload.encoding, upload.delimiter, upload.ignored_columns) == ("utf-8", ",", [])
    assert catalogue() == expected_from_csv(DATA / "products_1000.csv")


def test_multiline_descriptions_survive_byte_for_byte() -> None:
    run_bytes((DATA / "products_1000.csv").read_bytes())
    rows = _reference_rows()
    unique = [row for row in rows if sum(other["sku"] == row["sku"] for other in rows) == 1]
    multiline = [row for row in unique if "\n" in row["description"]][:25]
    assert len(multiline) == 25
    stored = catalogue()
    for row in multiline:
        assert stored[row["sku"].casefold()][2] == row["description"]
        assert "\r" not in stored[row["sku"].casefold()][2]


def test_reimport_changes_nothing_and_says_so() -> None:
    data = (DATA / "products_1000.csv").read_bytes()
    run_bytes(data)
    with session_scope() as session:
        stamps = dict(session.execute(select(Product.sku_key, Product.updated_at)).all())
    upload = run_bytes(data)
    assert (upload.created, upload.updated, upload.unchanged) == (0, 0, 999)
    with session_scope() as session:
        assert dict(session.execute(select(Product.sku_key, Product.updated_at)).all()) == stamps


def test_one_product_imported_event_per_import() -> None:
    upload = run_bytes((DATA / "products_100.csv").read_bytes())
    with session_scope() as session:
        events = list(session.execute(select(OutboxEvent).where(OutboxEvent.event_type == "product_imported")).scalars())
    assert len(events) == 1
    assert events[0].payload == {"upload_id": upload.id, "filename": "products.csv", "status": "completed",
                                 "total_rows": 100, "created": 100, "updated": 0, "unchanged": 0, "failed_rows": 0}


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_and_line_ends(delimiter: str, newline: str) -> None:
    rows = [HEADER, ["A-1", "Alpha", "first line\nsecond; line, with | and \t tab"], ["B-2", "Beta", ""]]
    upload = run_bytes(csv_bytes(rows, delimiter=delimiter, newline=newline))
    assert upload.status == "completed", upload.error
    assert upload.delimiter == delimiter
    assert catalogue() == {"a-1": ("A-1", "Alpha", "first line\nsecond; line, with | and \t tab", True),
                           "b-2": ("B-2", "Beta", "", True)}


def test_crlf_inside_a_quoted_description_is_kept() -> None:
    run_bytes(b'sku,name,description\r\nA-1,Alpha,"one\r\ntwo\nthree"\r\n')
    assert catalogue()["a-1"][2] == "one\r\ntwo\nthree"


def test_utf8_bom_is_not_part_of_the_first_column() -> None:
    upload = run_bytes(b"\xef\xbb\xbf" + csv_bytes([HEADER, ["\u00dcber-1", "M\u00fcller", "caf\u00e9"]]))
    assert upload.status == "completed" and upload.encoding == "utf-8"
    assert catalogue() == {"\u00fcber-1": ("\u00dcber-1", "M\u00fcller", "caf\u00e9", True)}


def test_cp1252_file_is_read_as_cp1252() -> None:
    upload = run_bytes(csv_bytes([HEADER, ["EUR-1", "Pr\u00e9sident \u20ac", "na\u00efve \u2013 dash"]], encoding="cp1252"))
    assert upload.status == "completed" and upload.encoding == "cp1252"
    assert catalogue()["eur-1"] == ("EUR-1", "Pr\u00e9sident \u20ac", "na\u00efve \u2013 dash", True)


def test_cp1252_byte_late_in_the_file_restarts_as_cp1252(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "CHUNK_BYTES", 64 * 1024)
    rows = [HEADER] + [[f"S-{index}", f"Name {index}", "plain ascii " * 5] for index in range(5000)]
    rows.append(["LATE-1", "Caf\u00e9", "the only non-ASCII row"])
    upload = run_bytes(csv_bytes(rows, encoding="cp1252"))
    assert upload.status == "completed" and upload.encoding == "cp1252"
    assert upload.created == 5001
    assert catalogue()["late-1"][1] == "Caf\u00e9"


def test_header_case_order_and_extra_columns() -> None:
    rows = [[" Description ", "Colour", "NAME", "SKU", "weight"], ["d", "red", "Name A", "A-1", "3 kg"]]
    upload = run_bytes(csv_bytes(rows))
    assert upload.status == "completed"
    assert upload.ignored_columns == ["Colour", "weight"]
    assert catalogue() == {"a-1": ("A-1", "Name A", "d", True)}


def test_is_active_column_sets_it_and_active_alias_works() -> None:
    _seed(("KEEP-1", "Kept", "", False))
    rows = [["sku", "name", "is_active"], ["KEEP-1", "Kept", "yes"], ["NEW-1", "New", "FALSE"], ["NEW-2", "New 2", "0"]]
    upload = run_bytes(csv_bytes(rows))
    assert (upload.created, upload.updated) == (2, 1)
    assert {key: value[3] for key, value in catalogue().items()} == {"keep-1": True, "new-1": False, "new-2": False}
    run_bytes(csv_bytes([["sku", "name", "Active"], ["NEW-1", "New", "on"]]))
    assert catalogue()["new-1"][3] is True


def test_without_is_active_column_existing_flag_is_kept_and_new_are_active() -> None:
    _seed(("OFF-1", "Off", "", False))
    upload = run_bytes(csv_bytes([["sku", "name"], ["off-1", "Renamed"], ["ON-1", "On"]]))
    assert (upload.created, upload.updated) == (1, 1)
    assert catalogue() == {"off-1": ("off-1", "Renamed", "", False), "on-1": ("ON-1", "On", "", True)}


def test_last_row_wins_case_insensitively_and_unicode_keys_agree() -> None:
    _seed(("\u00fcber-1", "old", "", True))
    rows = [HEADER, ["ABC-1", "first", "1"], ["abc-1", "second", "2"], ["Abc-1", "third", "3"],
            ["\u00dcBER-1", "new spelling", ""], ["STRASSE", "s", ""], ["stra\u00dfe", "sharp s", ""]]
    upload = run_bytes(csv_bytes(rows))
    assert (upload.processed_rows, upload.created, upload.updated) == (6, 2, 1)
    assert catalogue() == {"abc-1": ("Abc-1", "third", "3", True),
                           "\u00fcber-1": ("\u00dcBER-1", "new spelling", "", True),
                           "strasse": ("stra\u00dfe", "sharp s", "", True)}


def test_values_are_trimmed_but_descriptions_are_not() -> None:
    run_bytes(csv_bytes([HEADER, ["  A-1 ", "  Alpha  ", "  spaced  "]]))
    assert catalogue() == {"a-1": ("A-1", "Alpha", "  spaced  ", True)}


def test_stray_quote_inside_an_unquoted_field_is_literal() -> None:
    upload = run_bytes(b'sku,name,description\r\nR-1,12" ruler,wooden\r\nR-2,Tape,"quoted, with comma"\r\n')
    assert upload.status == "completed"
    assert catalogue() == {"r-1": ("R-1", '12" ruler', "wooden", True), "r-2": ("R-2", "Tape", "quoted, with comma", True)}


def test_last_row_may_end_in_a_closing_quote_without_a_line_break() -> None:
    upload = run_bytes(b'sku,name,description\r\nQ-1,Quoted,"last, and closed"')
    assert (upload.status, upload.error) == ("completed", None)
    assert catalogue() == {"q-1": ("Q-1", "Quoted", "last, and closed", True)}


def test_row_boundaries_by_quote_parity_agree_with_the_exact_scan() -> None:
    """The numpy scan, where it answers at all, finds what the byte-by-byte scan finds."""
    import random

    generator = random.Random(7)
    starts = reader.field_starts(",")
    answered = 0
    for _ in range(20_000):
        data = bytes(generator.choice(b'"",\n\rab') for _ in range(generator.randint(0, 14)))
        fast = reader._scan_by_parity(data, starts)
        if fast is not None:
            answered += 1
            exact = reader._scan_exactly(data, starts, first=False, final=True)
            assert (fast.end, fast.quoted) == (exact.end, exact.quoted), data
    assert answered > 5_000


@pytest.mark.skipif(get_engine().dialect.name != "postgresql", reason="PostgreSQL query plan")
def test_merge_never_scans_the_catalogue_sequentially() -> None:
    """With statistics from a tiny catalogue, the planner would probe it by scanning; the INSERT
    makes the table grow under that scan, so a large import would take quadratic time.
    """
    from importer.ingest import backend, postgres

    _seed(("A-1", "One", "", True))
    with get_engine().begin() as connection:
        connection.execute(text("ANALYZE products"))
        backend.create_staging(connection, "plan_check")
        postgres.plan_merge(connection)
        plan = "\n".join(connection.execute(text(f"EXPLAIN {postgres._merge_sql('plan_check', False, True)}")).scalars())
        backend.drop_staging(connection, "plan_check")
    assert "Seq Scan on products" not in plan, plan
    assert "Index" in plan, plan


def test_every_row_fault_is_reported_and_the_rest_imported() -> None:
    rows = [["sku", "name", "description", "is_active"],
            ["OK-1", "Fine", "", "true"],
            ["", "No SKU", "", "true"],
            ["S" * 101, "Long SKU", "", "true"],
            ["NN-1", "  ", "", "true"],
            ["LN-1", "N" * 256, "", "true"],
            ["BA-1", "Bad active", "", "maybe"],
            ["BA-2", "Empty active", "", ""],
            ["FX-1", "Formula", "", "=HYPERLINK(1)"],
            ["OK-2", "Fine too", "", "no"]]
    data = csv_bytes(rows) + b"FEW-1,Too few\r\nMANY-1,Too,many,true,extra\r\n"
    upload = run_bytes(data)
    assert upload.status == "completed_with_errors"
    assert (upload.processed_rows, upload.failed_rows, upload.created) == (11, 9, 2)
    errors = errors_of(upload.id)  # type: ignore[arg-type]
    assert [(row, column) for row, column, _, _ in errors] == [
        (3, "sku"), (4, "sku"), (5, "name"), (6, "name"), (7, "is_active"), (8, "is_active"), (9, "is_active"),
        (11, ""), (12, "")]
    messages = {row: message for row, _, _, message in errors}
    assert messages[3] == "SKU is empty."
    assert messages[4] == "SKU is 101 characters long; the limit is 100."
    assert messages[6] == "Name is 256 characters long; the limit is 255."
    assert messages[7] == "is_active must be true or false (or yes/no, 1/0); got 'maybe'."
    assert messages[11] == "Wrong number of fields: expected 4, found 2."
    assert messages[12] == "Wrong number of fields: expected 4, found 5."
    assert set(catalogue()) == {"ok-1", "ok-2"}


def test_short_and_long_rows_in_one_chunk_are_both_caught() -> None:
    data = b"sku,name,description\r\nA-1,Alpha\r\nB-2,Beta,b,\r\nC-3,Gamma,c\r\n"
    upload = run_bytes(data)
    assert [(row, message) for row, _, _, message in errors_of(upload.id)] == [  # type: ignore[arg-type]
        (2, "Wrong number of fields: expected 3, found 2."), (3, "Wrong number of fields: expected 3, found 4.")]
    assert set(catalogue()) == {"c-3"}


def test_blank_lines_are_skipped_and_row_numbers_stay_true() -> None:
    data = b"sku,name\r\nA-1,Alpha\r\n\r\n,no sku\r\nB-2,Beta\r\n\r\n"
    upload = run_bytes(data)
    assert [row for row, *_ in errors_of(upload.id)] == [4]  # type: ignore[arg-type]
    assert set(catalogue()) == {"a-1", "b-2"}


def test_nul_characters_past_the_first_64_kb_are_rejected_per_row() -> None:
    filler = b"".join(b"C-%d,Gamma\r\n" % index for index in range(7000))
    upload = run_bytes(b"sku,name\r\n" + filler + b"A-1,Al\x00pha\r\nB-2,Beta\r\n")
    assert [(row, column) for row, column, _, _ in errors_of(upload.id)] == [(7002, "name")]  # type: ignore[arg-type]
    assert "b-2" in catalogue() and "a-1" not in catalogue()


def test_many_chunks_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "CHUNK_BYTES", 4096)
    upload = run_bytes((DATA / "products_1000.csv").read_bytes())
    assert (upload.created, upload.processed_rows) == (999, 1000)
    assert catalogue() == expected_from_csv(DATA / "products_1000.csv")


FILE_FAULTS = {
    "empty": (b"", "The file is empty."),
    "no sku column": (b"name,description\r\nAlpha,a\r\n", "no 'sku' column"),
    "no name column": (b"SKU;Title\r\nA-1;Alpha\r\n", "no 'name' column"),
    "png renamed to csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10", "not a CSV text file"),
    "binary with nul bytes": (b"sku,name\r\n\x00\x01\x02\x03", "not a CSV text file"),
    "utf-16": ("sku,name\r\nA,B\r\n".encode("utf-16"), "UTF-16"),
    "unterminated quote": (b'sku,name,description\r\nA-1,Alpha,"never closed\r\nB-2,Beta,b\r\n', "never closed"),
    "header only": (b"sku,name,description\r\n", "header but no rows"),
    "header and blank lines": (b"sku,name\r\n\r\n\r\n", "header but no rows"),
    "duplicate column": (b"sku,name,SKU\r\nA,B,C\r\n", "names the column 'sku' twice"),
}


@pytest.mark.parametrize("case", sorted(FILE_FAULTS))
def test_file_level_faults_fail_at_once_and_change_nothing(case: str) -> None:
    _seed(("KEEP-1", "Kept", "as is", True))
    before = catalogue()
    data, message = FILE_FAULTS[case]
    upload = run_bytes(data, "products.csv")
    assert upload.status == "failed" and upload.stage == "failed"
    assert message in (upload.error or "")
    assert upload.finished_at is not None
    assert catalogue() == before


def test_cp1252_undefined_byte_fails_clearly() -> None:
    upload = run_bytes(b"sku,name\r\nA-1,\x81bad\r\n")
    assert upload.status == "failed"
    assert "neither UTF-8 nor Windows-1252" in (upload.error or "")


def test_error_report_is_spreadsheet_safe() -> None:
    from importer.jobs import iter_error_report

    upload = run_bytes(csv_bytes([["sku", "name", "is_active"], ["F-1", "x", "=cmd|' /C calc'!A0"], ["", "@SUM(1)", "1"]]))
    report = "".join(iter_error_report(upload.id))  # type: ignore[arg-type]
    rows = list(csv.reader(io.StringIO(report)))
    assert rows[0] == ["row", "column", "value", "message"]
    assert rows[1][:3] == ["2", "is_active", "'=cmd|' /C calc'!A0"]
    assert rows[1][3].startswith("is_active must be true or false")
    assert rows[2][:3] == ["3", "sku", ""]
