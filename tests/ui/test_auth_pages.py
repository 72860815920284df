"""First-admin set-up, login, logout and the login redirect, in NiceGUI's simulated browser."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest
from nicegui.testing import User

from importer import auth
from importer.db import session_scope

pytestmark = pytest.mark.ui


async def _landed_on(user: User, path: str) -> None:
    """Navigation runs as a task; wait (bounded) until the simulated browser has opened `path`."""
    for _ in range(50):
        if user.back_history and user.back_history[-1] == path:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected to land on {path}, history is {user.back_history}")


def _log_in(user: User, username: str, password: str) -> None:
    user.find(marker="username").type(username)
    user.find(marker="password").type(password)
    user.find(marker="login").click()


async def test_without_users_the_login_becomes_the_first_admin_setup(user: User) -> None:
    await user.open("/login")
    await user.should_see(marker="create-admin")
    user.find(marker="username").type("boss")
    user.find(marker="password").type("long-enough-pw")
    user.find(marker="repeat").type("different-pw")
    user.find(marker="create-admin").click()
    await user.should_see("The passwords do not match.")

    user.find(marker="password").clear().type("short")
    user.find(marker="repeat").clear().type("short")
    user.find(marker="create-admin").click()
    await user.should_see("password: must be at least 8 characters")

    user.find(marker="password").clear().type("long-enough-pw")
    user.find(marker="repeat").clear().type("long-enough-pw")
    user.find(marker="create-admin").click()
    await user.should_see("Welcome, boss!")
    await _landed_on(user, "/products")
    await user.should_see(marker="user-menu")
    with session_scope() as session:
        created = auth.authenticate(session, "boss", "long-enough-pw")
        assert created is not None and created.is_admin


@pytest.mark.usefixtures("admin")
async def test_setup_is_closed_once_a_user_exists(user: User) -> None:
    await user.open("/setup")
    await user.should_see(marker="login")
    await user.should_not_see(marker="create-admin")


async def test_wrong_password_is_refused_with_a_message(user: User, admin: dict) -> None:  # type: ignore[type-arg]
    await user.open("/login")
    _log_in(user, admin["username"], "not-the-password")
    await user.should_see("Wrong username or password.")
    assert user.find(marker="password").elements.pop().value == ""  # type: ignore[attr-defined]
    response = await user.http_client.get("/products")
    assert response.status_code in (302, 303, 307)


async def test_unknown_user_gets_the_same_message(user: User, admin: dict) -> None:  # type: ignore[type-arg]
    await user.open("/login")
    _log_in(user, "nobody", admin["password"])
    await user.should_see("Wrong username or password.")


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("path", ["/products", "/products?name=shirt", "/"])
async def test_anonymous_visitors_are_sent_to_login_with_the_way_back(user: User, path: str) -> None:
    response = await user.http_client.get(path)
    assert response.status_code in (302, 303, 307)
    assert response.headers["location"] == f"/login?redirect_to={quote(path)}"


async def test_login_returns_to_the_page_asked_for(user: User, admin: dict) -> None:  # type: ignore[type-arg]
    await user.open("/login?redirect_to=" + quote("/products?name=shirt"))
    _log_in(user, admin["username"], admin["password"])
    await _landed_on(user, "/products?name=shirt")


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "javascript:alert(1)"]
)
async def test_login_never_redirects_off_site(user: User, admin: dict, target: str) -> None:  # type: ignore[type-arg]
    await user.open("/login?redirect_to=" + quote(target))
    _log_in(user, admin["username"], admin["password"])
    await _landed_on(user, "/products")


async def test_logout_ends_the_session(logged_in_user: User) -> None:
    assert (await logged_in_user.http_client.get("/products")).status_code == 200
    logged_in_user.find(marker="logout").click()
    await _landed_on(logged_in_user, "/login")
    await logged_in_user.should_see(marker="login")
    response = await logged_in_user.http_client.get("/products")
    assert response.headers["location"] == "/login?redirect_to=/products"


async def test_the_browser_session_can_call_the_api_until_logout(logged_in_user: User) -> None:
    response = await logged_in_user.http_client.post("/api/products/", json={"sku": "S-1", "name": "Via session"})
    assert response.status_code == 201
    assert (await logged_in_user.http_client.get("/api/products/")).json()["count"] == 1
    logged_in_user.find(marker="logout").click()
    await _landed_on(logged_in_user, "/login")
    response = await logged_in_user.http_client.get("/api/products/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication required."}
