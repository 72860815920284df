"""The shared page frame: header, navigation, dark mode and the user menu."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Optional, TypeVar, Union

from nicegui import app, run, ui
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.responses import RedirectResponse

from importer.db import session_scope
from importer.errors import ImporterError
from importer.models import User
from ui.session import current_user, log_out

log = logging.getLogger(__name__)
T = TypeVar("T")
PageContent = Callable[[], Union[None, Awaitable[None]]]

NAVIGATION = (
    ("Products", "/products", "inventory_2"),
    ("Imports", "/imports", "upload_file"),
    ("Webhooks", "/webhooks", "webhook"),
)

_frame_hooks: list[Callable[[], None]] = []


def add_frame_hook(hook: Callable[[], None]) -> None:
    """Let a feature add something to every page (for example, import notifications)."""
    _frame_hooks.append(hook)


async def in_database(failure: str, work: Callable[[Session], T]) -> Optional[T]:
    """Run `work` in a session off the event loop; when it fails, tell the user why and return None."""

    def call() -> T:
        with session_scope() as session:
            return work(session)

    try:
        return await run.io_bound(call)
    except ImporterError as exc:
        ui.notify(f"{failure}: {exc}", type="negative", multi_line=True)
    except SQLAlchemyError as exc:
        log.warning("%s: %s", failure, exc)
        ui.notify(f"{failure}: the database did not answer. Please try again in a moment.", type="negative")
    return None


def confirm(title: str, message: str, action: str, on_confirm: Callable[[], Awaitable[None]]) -> None:
    """Ask before anything destructive; the action runs only on an explicit yes.

    The dialog hangs off the page, not off the element that opened it: that one may be gone by then.
    """
    with ui.context.client.content, ui.dialog() as dialog, ui.card().classes("max-w-md").mark("confirm-dialog"):
        ui.label(title).classes("text-lg font-semibold")
        ui.label(message).classes("text-sm").mark("confirm-message")
        with ui.row().classes("w-full justify-end gap-2"):
            ui.button("Keep it", on_click=dialog.close).props("flat").mark("confirm-no")

            async def confirmed() -> None:
                dialog.close()
                await on_confirm()

            ui.button(action, on_click=confirmed).props("color=negative").mark("confirm-yes")
    dialog.on("hide", dialog.delete)
    dialog.open()


def _logout() -> None:
    log_out()
    ui.navigate.to("/login")


def _header(title: str, user: User) -> None:
    dark = ui.dark_mode(app.storage.user.get("dark_mode", False))
    ui.colors(primary="#2563eb")
    with ui.header(elevated=True).classes("items-center justify-between px-4 py-2"):
        with ui.row().classes("items-center gap-2 no-wrap"):
            ui.icon("inventory", size="sm")
            ui.label("Product Importer").classes("text-lg font-semibold gt-xs")
        with ui.row().classes("items-center gap-1 no-wrap"):
            for label, target, icon in NAVIGATION:
                button = ui.button(label, icon=icon, on_click=lambda t=target: ui.navigate.to(t))
                button.props("flat color=white").mark(f"nav-{label.lower()}")
                if label == title:
                    button.classes("bg-white/20")
        with ui.row().classes("items-center gap-1 no-wrap"):
            ui.switch().bind_value(dark).bind_value(app.storage.user, "dark_mode").props(
                "color=white checked-icon=dark_mode unchecked-icon=light_mode"
            ).tooltip("Dark mode").mark("dark-mode")
            with ui.button(icon="account_circle").props("flat round color=white").mark("user-menu"):
                with ui.menu():
                    ui.menu_item(f"Signed in as {user.username}").props("disable")
                    ui.separator()
                    ui.menu_item("Log out", on_click=_logout).mark("logout")


def app_page(path: str, title: str) -> Callable[[PageContent], PageContent]:
    """Register a logged-in page: the frame around it, the login check before it."""

    def decorator(content: PageContent) -> PageContent:
        @ui.page(path, title=f"{title} · Product Importer")
        async def page() -> Optional[RedirectResponse]:
            user = current_user()
            if user is None:
                log_out()
                return RedirectResponse(f"/login?redirect_to={path}")
            _header(title, user)
            for hook in _frame_hooks:
                hook()
            with ui.column().classes("w-full max-w-screen-2xl mx-auto p-4 gap-4"):
                ui.label(title).classes("text-2xl font-semibold")
                result = content()
                if inspect.isawaitable(result):
                    await result
            return None

        return content

    return decorator
