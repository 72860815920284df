"""Fixtures for the NiceGUI User-fixture tests (simulated browser, main.py per test)."""

from __future__ import annotations

import pytest
from nicegui.testing import User


@pytest.fixture
async def logged_in_user(user: User, admin: dict) -> User:  # type: ignore[type-arg]
    """A simulated browser logged in through the real login page as the `admin` fixture's user."""
    await user.open("/login")
    user.find(marker="username").type(admin["username"])
    user.find(marker="password").type(admin["password"])
    user.find(marker="login").click()
    await user.should_see(marker="user-menu", retries=50)
    return user
