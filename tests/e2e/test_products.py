"""The Products page in a real browser: filter, edit, export, delete all."""

from __future__ import annotations

import re

import pytest
import requests

from tests.e2e.browser import Browser
from tests.e2e.conftest import LiveServer, product_count

pytestmark = pytest.mark.e2e

FIRST_SKU = "lay-raise-best-end"
FIRST_NAME = "Bryce Jones"


def _wait_for_summary(browser: Browser, count: int, filtered: bool) -> None:
    """The count line above the table: `999 products`, or `1 product match(es) the filters`."""
    pattern = re.compile(rf"(?m)^{count:,} products?{' match(es)? the filters' if filtered else ''}$")
    browser.wait(lambda _: pattern.search(browser.page_text()), f"the summary to count {count:,}")


def _show_only(browser: Browser, sku: str) -> None:
    browser.fill("SKU", sku)
    _wait_for_summary(browser, 1, filtered=True)


def test_find_a_product_by_filter(catalogue_1000: None, logged_in: Browser) -> None:
    _wait_for_summary(logged_in, 999, filtered=False)
    _show_only(logged_in, FIRST_SKU.upper())
    rows = logged_in.table_rows()
    assert len(rows) == 1 and rows[0][0] == FIRST_SKU and rows[0][1] == FIRST_NAME, rows

    logged_in.fill("SKU", "no-such-sku-anywhere")
    _wait_for_summary(logged_in, 0, filtered=True)
    logged_in.wait_for_text("No products match these filters.")


def test_search_box_looks_in_every_field(catalogue_1000: None, logged_in: Browser, live_server: LiveServer,
                                         api: requests.Session) -> None:
    expected = product_count(api, live_server.url, search="hospital")
    assert 0 < expected < 999
    logged_in.fill("Search all fields", "HOSPITAL")
    _wait_for_summary(logged_in, expected, filtered=True)


def test_edit_a_product(catalogue_1000: None, logged_in: Browser, live_server: LiveServer,
                        api: requests.Session) -> None:
    _show_only(logged_in, FIRST_SKU)
    logged_in.click(logged_in.icon_button("edit", "//table"))
    dialog = logged_in.dialog()
    logged_in.wait_for_text(f"Edit {FIRST_SKU}")
    logged_in.fill("Name", "Bryce Jones, edited in a browser", within=dialog)
    logged_in.fill("Description", "Line one\nline two", within=dialog)
    logged_in.screenshot("dialog")
    logged_in.click_button("Save", within=dialog)
    logged_in.notification(f"Saved {FIRST_SKU}.")
    logged_in.wait_for_text("Bryce Jones, edited in a browser")

    found = api.get(f"{live_server.url}/api/products/", params={"sku": FIRST_SKU}, timeout=10).json()["results"]
    assert [(p["name"], p["description"]) for p in found] == [("Bryce Jones, edited in a browser",
                                                               "Line one\nline two")]


def test_edit_refuses_a_sku_that_exists_in_another_case(catalogue_1000: None, logged_in: Browser,
                                                        live_server: LiveServer, api: requests.Session) -> None:
    other = api.get(f"{live_server.url}/api/products/", params={"ordering": "sku", "page_size": 2},
                    timeout=10).json()["results"]
    taken, editing = other[0]["sku"], other[1]["sku"]
    _show_only(logged_in, editing)
    logged_in.click(logged_in.icon_button("edit", "//table"))
    dialog = logged_in.dialog()
    logged_in.fill("SKU", taken.upper(), within=dialog)
    logged_in.click_button("Save", within=dialog)
    logged_in.wait_for_text("already exists")
    assert product_count(api, live_server.url, sku=editing) == 1


def test_delete_all_asks_first(catalogue_1000: None, logged_in: Browser, live_server: LiveServer,
                               api: requests.Session) -> None:
    _wait_for_summary(logged_in, 999, filtered=False)
    logged_in.click_button("Delete all products")
    dialog = logged_in.dialog()
    logged_in.wait_for_text("All 999 products will be deleted")
    logged_in.screenshot("confirmation")
    logged_in.click_button("Keep it", within=dialog)
    logged_in.wait_until_gone("All 999 products will be deleted")
    assert product_count(api, live_server.url) == 999

    logged_in.click_button("Delete all products")
    dialog = logged_in.dialog()
    logged_in.click_button("Delete 999 products", within=dialog)
    logged_in.notification("Deleted 999 products.")
    logged_in.wait_for_text("No products yet — import a CSV")
    assert product_count(api, live_server.url) == 0
