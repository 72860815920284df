"""Importing through the Imports page in a real browser: upload, progress, export round trip, cancel."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By

from bench.datagen import write_products_csv
from tests.e2e.browser import Browser, literal
from tests.e2e.conftest import TEST_DATA, LiveServer, product_count

pytestmark = pytest.mark.e2e

LARGE_FILE_ROWS = 400_000


def _card(filename: str) -> str:
    """The running-import card of this file (the history table lists it too)."""
    return (f"//div[contains(@class, 'q-card')][.//div[contains(@class, 'q-linear-progress')]]"
            f"[.//*[normalize-space(.)={literal(filename)}]]")


def _bar(browser: Browser, filename: str) -> tuple[float, float]:
    """(the bar's value, the share of its track that is drawn filled); the fill animates towards the value."""
    bar = browser.driver.find_element(By.XPATH, f"{_card(filename)}//div[@role='progressbar']")
    drawn = browser.driver.execute_script(
        "const model = arguments[0].querySelector('.q-linear-progress__model');"
        "return model.getBoundingClientRect().width / arguments[0].getBoundingClientRect().width;", bar)
    return float(bar.get_attribute("aria-valuenow") or 0), float(drawn)


def _upload_through_the_page(browser: Browser, path: Path) -> None:
    browser.open("/imports")
    browser.upload_file(path)
    browser.notification(f"{path.name} uploaded; its import has started.")


def _watch_until_finished(browser: Browser, filename: str) -> list[str]:
    """Every percentage the card showed on the way, until its summary line appears."""
    seen: list[str] = []

    def note_percent() -> None:
        percent = browser.driver.find_element(By.XPATH, f"{_card(filename)}//*[contains(text(), '%')]").text
        if not seen or seen[-1] != percent:
            seen.append(percent)

    def finished(_: object) -> bool:
        note_percent()
        return "Stage: done" in browser.driver.find_element(By.XPATH, _card(filename)).text

    def bar_settled(_: object) -> bool:
        value, drawn = _bar(browser, filename)
        return abs(drawn - value) < 0.001

    browser.wait(finished, f"the import of {filename} to finish", seconds=120)
    browser.wait(bar_settled, "the progress bar to be drawn at its value")
    note_percent()  # the percentage read just before "done" appeared may be an older one
    return seen


def test_upload_shows_progress_to_100_percent_and_the_summary(empty_catalogue: None, logged_in: Browser,
                                                               live_server: LiveServer,
                                                               api: requests.Session) -> None:
    _upload_through_the_page(logged_in, TEST_DATA / "products_1000.csv")
    seen = _watch_until_finished(logged_in, "products_1000.csv")
    assert seen[-1] == "100%", seen
    assert _bar(logged_in, "products_1000.csv")[0] == 1.0
    card = logged_in.driver.find_element(By.XPATH, _card("products_1000.csv")).text
    assert "999 products: 999 created, 0 updated, 1 duplicate merged / 0 rejected" in card, card
    assert "Completed" in card
    assert product_count(api, live_server.url) == 999


def test_export_and_import_again_gives_the_same_catalogue(catalogue_1000: None, logged_in: Browser,
                                                         live_server: LiveServer, api: requests.Session) -> None:
    logged_in.click_button("Export CSV")
    exported = logged_in.wait_for_download(".csv")
    first_export = exported.read_bytes()
    assert first_export == api.get(f"{live_server.url}/api/products/export/", timeout=60).content

    api.delete(f"{live_server.url}/api/products/bulk-delete/", timeout=60).raise_for_status()
    _upload_through_the_page(logged_in, exported)
    _watch_until_finished(logged_in, exported.name)
    card = logged_in.driver.find_element(By.XPATH, _card(exported.name)).text
    assert "999 products: 999 created" in card, card
    assert api.get(f"{live_server.url}/api/products/export/", timeout=60).content == first_export


@pytest.fixture(scope="session")
def large_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_products_csv(tmp_path_factory.mktemp("large") / "large_products.csv", LARGE_FILE_ROWS, seed=7)


def test_cancel_a_running_import_of_a_large_file(catalogue_1000: None, logged_in: Browser, large_csv: Path,
                                                 live_server: LiveServer, api: requests.Session) -> None:
    _upload_through_the_page(logged_in, large_csv)
    card = _card(large_csv.name)
    logged_in.wait(lambda _: "Importing" in logged_in.driver.find_element(By.XPATH, card).text,
                   "the import to start")
    logged_in.screenshot("running")
    logged_in.click_button("Cancel", within=card)
    dialog = logged_in.dialog()
    logged_in.wait_for_text("Cancel this import?")
    logged_in.screenshot("confirmation")
    logged_in.click_button("Cancel import", within=dialog)

    logged_in.wait(lambda _: "Cancelled: the catalogue was not changed." in
                   logged_in.driver.find_element(By.XPATH, card).text, "the card to say it was cancelled", 120)
    assert product_count(api, live_server.url) == 999
    newest = api.get(f"{live_server.url}/api/uploads/", timeout=10).json()["results"][0]
    assert (newest["filename"], newest["status"]) == (large_csv.name, "cancelled")
