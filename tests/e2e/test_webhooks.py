"""The Webhooks page in a real browser, sending to real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.browser import Browser
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def no_webhooks(live_server: LiveServer, api: requests.Session) -> None:
    for webhook in api.get(f"{live_server.url}/api/webhooks/", timeout=10).json()["results"]:
        api.delete(f"{live_server.url}/api/webhooks/{webhook['id']}/", timeout=10).raise_for_status()


def _add_webhook(browser: Browser, url: str) -> None:
    browser.click_button("Add webhook")
    dialog = browser.dialog()
    browser.fill("Receiver URL", url, within=dialog)
    browser.click_button("Save", within=dialog)
    browser.wait_for_text("Copy the signing secret now")
    browser.screenshot("secret")
    browser.click_button("Done", within=browser.dialog())
    browser.wait_until_gone("Copy the signing secret now")


def _card(url: str) -> str:
    return f"//div[contains(@class, 'q-card')][.//*[normalize-space(.)='{url}']]"


def test_webhook_test_shows_the_receivers_status_code(logged_in: Browser, no_webhooks: None,
                                                      receivers) -> None:  # noqa: F811
    accepting = receivers(status=204)
    logged_in.open("/webhooks")
    logged_in.wait_for_text("No webhooks yet")
    _add_webhook(logged_in, accepting.url)

    logged_in.click_button("Test", within=_card(accepting.url))
    logged_in.wait_for_text("Test delivered: HTTP 204")
    received = accepting.wait_for(1)
    assert received[0].headers["webhook-signature"].startswith("v1,")


def test_a_failing_receiver_shows_its_status_code(logged_in: Browser, no_webhooks: None,
                                                  receivers) -> None:  # noqa: F811
    failing = receivers(status=503)
    logged_in.open("/webhooks")
    _add_webhook(logged_in, failing.url)
    logged_in.click_button("Test", within=_card(failing.url))
    result = logged_in.wait_for_text("Test failed:")
    assert "503" in result.text, result.text
