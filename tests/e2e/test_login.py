"""Logging in and out through the real page, in a real browser."""

from __future__ import annotations

import pytest

from tests.e2e.browser import Browser
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e


def test_pages_need_a_login_and_the_login_leads_back(browser: Browser, live_server: LiveServer) -> None:
    browser.open("/webhooks")
    assert browser.path == "/login"
    browser.fill("Username", live_server.username)
    browser.fill("Password", live_server.password)
    browser.click_button("Log in")
    browser.wait(lambda _: browser.path == "/webhooks", "the page asked for before logging in")


def test_wrong_password_is_refused_with_a_message(browser: Browser, live_server: LiveServer) -> None:
    browser.open("/login")
    browser.fill("Username", live_server.username)
    browser.fill("Password", "not-the-password")
    browser.click_button("Log in")
    browser.notification("Wrong username or password.")
    assert browser.path == "/login"


def test_log_out_from_the_user_menu(logged_in: Browser, live_server: LiveServer) -> None:
    logged_in.click(logged_in.icon_button("account_circle"))
    logged_in.click(logged_in.wait_for_text("Log out"))
    logged_in.wait(lambda _: logged_in.path == "/login", "the login page after logging out")
    logged_in.open("/products")
    assert logged_in.path == "/login"
