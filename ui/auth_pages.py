"""Login, the one-time first-admin set-up, and the root redirect."""

from __future__ import annotations

import re
from typing import Optional

from nicegui import ui
from starlette.responses import RedirectResponse

from importer import auth
from importer.db import session_scope
from importer.errors import ImporterError
from ui.session import log_in

UNSAFE_IN_TARGET = re.compile(r"[\\\x00-\x20\x7f]")


def _no_users_yet() -> bool:
    with session_scope() as session:
        return not auth.has_users(session)


def _safe_target(redirect_to: str) -> str:
    """Only same-site paths, so the login cannot be used to bounce users elsewhere.

    Browsers read `/\\host` as `//host` and drop tabs and line breaks inside URLs, so a
    backslash or any control character or space makes the target untrusted as well.
    """
    same_site = redirect_to.startswith("/") and not redirect_to.startswith("//")
    return redirect_to if same_site and not UNSAFE_IN_TARGET.search(redirect_to) else "/products"


def _card(title: str, subtitle: str):  # type: ignore[no-untyped-def]
    ui.page_title(f"{title} · Product Importer")
    with ui.column().classes("absolute-center items-center gap-4 w-full max-w-sm px-4"):
        ui.icon("inventory", size="xl", color="primary")
        ui.label("Product Importer").classes("text-2xl font-semibold")
        ui.label(subtitle).classes("text-sm text-gray-500 text-center")
        return ui.card().classes("w-full")


@ui.page("/")
def index() -> RedirectResponse:
    return RedirectResponse("/products")


@ui.page("/login")
def login_page(redirect_to: str = "/products") -> Optional[RedirectResponse]:
    if _no_users_yet():
        return RedirectResponse("/setup")

    def try_login() -> None:
        with session_scope() as session:
            user = auth.authenticate(session, username.value or "", password.value or "")
        if user is None:
            ui.notify("Wrong username or password.", type="negative")
            password.value = ""
            return
        log_in(user)
        ui.navigate.to(_safe_target(redirect_to))

    with _card("Log in", "Sign in to manage your catalogue."):
        username = ui.input("Username").props("autofocus outlined").classes("w-full").mark("username")
        password = ui.input("Password", password=True, password_toggle_button=True).props("outlined")
        password.classes("w-full").mark("password").on("keydown.enter", try_login)
        ui.button("Log in", on_click=try_login).classes("w-full").mark("login")
    return None


@ui.page("/setup")
def setup_page() -> Optional[RedirectResponse]:
    if not _no_users_yet():
        return RedirectResponse("/login")

    def create_admin() -> None:
        if password.value != repeat.value:
            ui.notify("The passwords do not match.", type="negative")
            return
        try:
            with session_scope() as session:
                user = auth.create_first_admin(session, username.value or "", password.value or "")
        except auth.SetupDone as exc:
            ui.notify(str(exc), type="warning")
            ui.navigate.to("/login")
            return
        except ImporterError as exc:
            ui.notify(str(exc), type="negative")
            return
        log_in(user)
        ui.notify(f"Welcome, {user.username}!", type="positive")
        ui.navigate.to("/products")

    with _card("Create the first admin", "No account exists yet. Create the administrator account to begin."):
        username = ui.input("Username").props("autofocus outlined").classes("w-full").mark("username")
        password = ui.input("Password (8+ characters)", password=True, password_toggle_button=True)
        password.props("outlined").classes("w-full").mark("password")
        repeat = ui.input("Repeat password", password=True).props("outlined").classes("w-full").mark("repeat")
        repeat.on("keydown.enter", create_admin)
        ui.button("Create admin", on_click=create_admin).classes("w-full").mark("create-admin")
    return None
