"""The deferred search index: imported rows are searchable at once, indexed afterwards, and
single-product writes never race an import's merge (run on SQLite and on PostgreSQL).
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text

from importer import products, search_index
from importer.db import get_engine, session_scope
from importer.models import Product, ProductCreate, ProductUpdate
from importer.products import ProductFilter
from tests.importer.ingest_support import catalogue, csv_bytes, run_bytes

HEADER = ["sku", "name", "description", "is_active"]
ROWS = [["S-1", "Walnut desk", "Solid walnut\nwith drawers", "true"],
        ["S-2", "Oak shelf", "Plain oak", "true"],
        ["S-3", "Pine stool", "Walnut finish", "false"]]

postgres_only = pytest.mark.skipif(get_engine().dialect.name != "postgresql", reason="PostgreSQL search indexes")


def _found(**filters: str | bool) -> list[str]:
    with session_scope() as session:
        page = products.list_products(session, ProductFilter(**filters), ordering="sku")  # type: ignore[arg-type]
        return [product.sku for product in page.results]


def _flags() -> dict[str, bool]:
    with session_scope() as session:
        return dict(session.execute(select(Product.sku, Product.search_indexed)).all())  # type: ignore[arg-type]


def _pending() -> int:
    with session_scope() as session:
        return search_index.pending_count(session)


def test_imported_rows_are_found_before_and_after_indexing() -> None:
    run_bytes(csv_bytes([HEADER, *ROWS]))
    before = [_found(search="walnut"), _found(description="WALNUT"), _found(name="oak"), _found(sku="s-3"),
              _found(search="walnut", is_active=True)]
    indexed = search_index.index_pending()
    after = [_found(search="walnut"), _found(description="WALNUT"), _found(name="oak"), _found(sku="s-3"),
             _found(search="walnut", is_active=True)]
    assert before == after == [["S-1", "S-3"], ["S-1", "S-3"], ["S-2"], ["S-3"], ["S-1"]]
    postgres = get_engine().dialect.name == "postgresql"
    assert indexed == (3 if postgres else 0)
    assert _pending() == 0


@postgres_only
def test_import_leaves_new_and_changed_rows_for_the_indexer_and_keeps_unchanged_ones() -> None:
    run_bytes(csv_bytes([HEADER, *ROWS]))
    assert _pending() == 3 and set(_flags().values()) == {False}
    search_index.index_pending()
    assert set(_flags().values()) == {True}
    changed = [["S-1", "Walnut desk", "Teak now", "true"],  # text changed: out of the index
               ["S-2", "Oak shelf", "Plain oak", "false"],  # only is_active changed: stays indexed
               ["S-3", "Pine stool", "Walnut finish", "false"],  # unchanged
               ["S-4", "Teak chair", "", "true"]]  # new
    upload = run_bytes(csv_bytes([HEADER, *changed]))
    assert (upload.created, upload.updated, upload.unchanged) == (1, 2, 1)
    assert _flags() == {"S-1": False, "S-2": True, "S-3": True, "S-4": False}
    assert _found(search="teak") == ["S-1", "S-4"]
    assert _found(search="drawers") == []  # the index still holds the old text; the row no longer matches
    assert search_index.index_pending() == 2
    assert _found(search="teak") == ["S-1", "S-4"] and _found(search="drawers") == []


@postgres_only
def test_searches_use_the_trigram_indexes_once_rows_are_indexed() -> None:
    filler = [[f"F-{i}", f"Item {i}", f"plain text {i}", "true"] for i in range(3000)]
    run_bytes(csv_bytes([HEADER, *ROWS, *filler]))
    search_index.index_pending()
    with session_scope() as session:
        statement = products._filtered(select(Product.id), ProductFilter(search="walnut"))
        compiled = statement.compile(get_engine(), compile_kwargs={"literal_binds": True})
        session.execute(text("SET LOCAL enable_seqscan = off"))  # a small table: the planner would rather scan
        plan = "\n".join(session.execute(text(f"EXPLAIN {compiled}")).scalars())
    for index in ("ix_products_description_trgm", "ix_products_name_trgm", "ix_products_sku_trgm",
                  "ix_products_search_pending"):
        assert index in plan, plan


@postgres_only
def test_one_indexer_at_a_time() -> None:
    run_bytes(csv_bytes([HEADER, *ROWS]))
    with get_engine().connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:key)"), {"key": search_index.RUN_LOCK_KEY})
        assert search_index.index_pending() == 0
        other.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": search_index.RUN_LOCK_KEY})
    assert search_index.index_pending() == 3


@postgres_only
@pytest.mark.parametrize("write", ["create", "rename"])
def test_single_product_writes_that_may_add_a_sku_wait_for_a_merge(write: str) -> None:
    """The merge inserts the SKUs it did not find: a product created (or renamed) meanwhile would
    make it fail on the unique index, so such writes wait for its exclusive lock.
    """
    with session_scope() as session:
        existing = products.create_product(session, ProductCreate(sku="OLD-1", name="Old")).id
        session.commit()
    finished = threading.Event()

    def _write() -> None:
        with session_scope() as session:
            if write == "create":
                products.create_product(session, ProductCreate(sku="NEW-1", name="New"))
            else:
                products.update_product(session, existing, ProductUpdate(sku="NEW-1"), partial=True)  # type: ignore[arg-type]
            session.commit()
        finished.set()

    with get_engine().begin() as merge:
        products.lock_catalogue(merge, exclusive=True)
        writer = threading.Thread(target=_write)
        writer.start()
        time.sleep(0.5)
        assert not finished.is_set()
    writer.join(timeout=10)
    assert finished.is_set()
    assert "new-1" in catalogue()
