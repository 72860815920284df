"""The Products page in NiceGUI's simulated browser, against the real service and database."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable

import pytest
from nicegui import ui
from nicegui.testing import User

from importer import products
from importer.db import session_scope
from importer.models import ProductCreate

pytestmark = pytest.mark.ui


def _add(count: int, prefix: str = "SKU", **fields: object) -> None:
    with session_scope() as session:
        for number in range(count):
            products.create_product(session, ProductCreate(sku=f"{prefix}-{number:03}", name=f"{prefix} item {number}",
                                                           **fields))  # type: ignore[arg-type]


def _table(user: User) -> ui.table:
    return user.find(marker="products-table").elements.pop()  # type: ignore[return-value]


def _shown_skus(user: User) -> list[str]:
    return [row["sku"] for row in _table(user).rows]


async def _wait_for(condition: Callable[[], bool], attempts: int = 50) -> None:
    """Event handlers run as tasks; give them a moment (this bounds waiting, it does not time anything)."""
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the page did not reach the expected state")


async def _open(user: User) -> None:
    await user.open("/products")
    await user.should_see(marker="summary")


async def test_anonymous_visitor_is_sent_to_login(user: User, admin: dict) -> None:  # type: ignore[type-arg]
    await user.open("/products")
    await user.should_see(marker="login")


async def test_empty_catalogue_points_to_imports(logged_in_user: User) -> None:
    await _open(logged_in_user)
    await logged_in_user.should_see("No products yet — import a CSV")
    await logged_in_user.should_see(marker="empty-imports-link")
    await logged_in_user.should_not_see(marker="products-table")


async def test_lists_one_page_and_the_total(logged_in_user: User) -> None:
    _add(30)
    await _open(logged_in_user)
    await logged_in_user.should_see("30 products")
    table = _table(logged_in_user)
    assert _shown_skus(logged_in_user) == [f"SKU-{n:03}" for n in range(25)]
    assert table.pagination["rowsNumber"] == 30
    await logged_in_user.should_not_see("No products yet — import a CSV")


async def test_paging_and_sorting_ask_the_server(logged_in_user: User) -> None:
    _add(30)
    await _open(logged_in_user)
    table = logged_in_user.find(marker="products-table")
    table.trigger("request", {"pagination": {"page": 2, "rowsPerPage": 25, "sortBy": None, "descending": False}})
    await _wait_for(lambda: _shown_skus(logged_in_user) == [f"SKU-{n:03}" for n in range(25, 30)])
    assert _table(logged_in_user).pagination == {"page": 2, "rowsPerPage": 25, "sortBy": None, "descending": False,
                                                 "rowsNumber": 30}
    table.trigger("request", {"pagination": {"page": 1, "rowsPerPage": 10, "sortBy": "sku", "descending": True}})
    await _wait_for(lambda: _shown_skus(logged_in_user)[:2] == ["SKU-029", "SKU-028"])
    assert len(_shown_skus(logged_in_user)) == 10


async def test_filters_narrow_the_list(logged_in_user: User) -> None:
    _add(3, "RED")
    _add(2, "BLUE", is_active=False)
    await _open(logged_in_user)
    logged_in_user.find(marker="filter-name").type("blue")
    await logged_in_user.should_see("2 products match the filters")
    assert _shown_skus(logged_in_user) == ["BLUE-000", "BLUE-001"]
    logged_in_user.find(marker="filter-name").clear()
    logged_in_user.find(marker="filter-search").type("red-00")
    await logged_in_user.should_see("3 products match the filters")
    logged_in_user.find(marker="filter-search").clear()
    logged_in_user.find(marker="filter-active").click()
    logged_in_user.find("Inactive only").click()
    await logged_in_user.should_see("2 products match the filters")
    logged_in_user.find(marker="filter-sku").type("nothing-like-this")
    await logged_in_user.should_see("0 products match the filters")
    await logged_in_user.should_not_see("No products yet — import a CSV")


async def test_create_a_product(logged_in_user: User) -> None:
    await _open(logged_in_user)
    logged_in_user.find(marker="new-product").click()
    logged_in_user.find(marker="sku").type("NEW-1")
    logged_in_user.find(marker="name").type("Brand new")
    logged_in_user.find(marker="description").type("Line one\nLine two")
    logged_in_user.find(marker="save").click()
    await logged_in_user.should_see("Created NEW-1.")
    await logged_in_user.should_see("1 product")
    with session_scope() as session:
        created = products.list_products(session).results[0]
    assert (created.sku, created.name, created.description, created.is_active) == (
        "NEW-1", "Brand new", "Line one\nLine two", True)


async def test_empty_fields_are_shown_under_the_fields(logged_in_user: User) -> None:
    await _open(logged_in_user)
    logged_in_user.find(marker="new-product").click()
    logged_in_user.find(marker="save").click()
    await logged_in_user.should_see(marker="product-dialog")
    sku = logged_in_user.find(marker="sku").elements.pop()
    name = logged_in_user.find(marker="name").elements.pop()
    await _wait_for(lambda: sku.error is not None)  # type: ignore[attr-defined]
    assert sku.error == "sku must not be empty"  # type: ignore[attr-defined]
    assert name.error == "name must not be empty"  # type: ignore[attr-defined]
    logged_in_user.find(marker="sku").type("x" * 101)
    logged_in_user.find(marker="name").type("ok")
    assert (sku.error, name.error) == (None, None), "typing clears the old errors"  # type: ignore[attr-defined]
    logged_in_user.find(marker="save").click()
    await _wait_for(lambda: sku.error is not None)  # type: ignore[attr-defined]
    assert sku.error == "String should have at most 100 characters"  # type: ignore[attr-defined]
    assert name.error is None  # type: ignore[attr-defined]


async def test_edit_into_a_duplicate_sku_shows_the_conflict_on_the_sku_field(logged_in_user: User) -> None:
    _add(2)
    await _open(logged_in_user)
    row = _table(logged_in_user).rows[1]
    logged_in_user.find(marker="products-table").trigger("edit", row)
    await logged_in_user.should_see("Edit SKU-001")
    logged_in_user.find(marker="sku").clear().type("sku-000")
    logged_in_user.find(marker="save").click()
    sku = logged_in_user.find(marker="sku").elements.pop()
    await _wait_for(lambda: sku.error is not None)  # type: ignore[attr-defined]
    assert "already exists" in sku.error  # type: ignore[attr-defined]
    await logged_in_user.should_see(marker="product-dialog")

    logged_in_user.find(marker="sku").clear().type("SKU-001-B")
    logged_in_user.find(marker="name").clear().type("Renamed")
    logged_in_user.find(marker="save").click()
    await logged_in_user.should_see("Saved SKU-001-B.")
    await _wait_for(lambda: "SKU-001-B" in _shown_skus(logged_in_user))


async def test_delete_one_asks_first(logged_in_user: User) -> None:
    _add(2)
    await _open(logged_in_user)
    row = _table(logged_in_user).rows[0]
    logged_in_user.find(marker="products-table").trigger("delete", row)
    await logged_in_user.should_see("Delete SKU-000?")
    logged_in_user.find(marker="confirm-no").click()
    with session_scope() as session:
        assert products.count_products(session) == 2

    logged_in_user.find(marker="products-table").trigger("delete", row)
    logged_in_user.find(marker="confirm-yes").click()
    await logged_in_user.should_see("Deleted SKU-000.")
    await _wait_for(lambda: _shown_skus(logged_in_user) == ["SKU-001"])


async def test_delete_all_says_how_many_and_asks_first(logged_in_user: User) -> None:
    _add(12)
    await _open(logged_in_user)
    logged_in_user.find(marker="filter-sku").type("SKU-001")
    await logged_in_user.should_see("1 product matches the filters")
    logged_in_user.find(marker="delete-all").click()
    await logged_in_user.should_see("All 12 products will be deleted, whatever the filters show. This cannot be undone.")
    logged_in_user.find(marker="confirm-yes").click()
    await logged_in_user.should_see("Deleted 12 products.")
    with session_scope() as session:
        assert products.count_products(session) == 0


async def test_export_downloads_the_filtered_csv(logged_in_user: User) -> None:
    _add(3, "RED")
    _add(2, "BLUE")
    await _open(logged_in_user)
    logged_in_user.find(marker="filter-name").type("blue")
    await logged_in_user.should_see("2 products match the filters")
    logged_in_user.find(marker="export").click()
    response = await logged_in_user.download.next()
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith('attachment; filename="products-')
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert rows == [["sku", "name", "description", "is_active"], ["BLUE-000", "BLUE item 0", "", "true"],
                    ["BLUE-001", "BLUE item 1", "", "true"]]
