"""Who is logged in to the UI, and the middleware that sends everyone else to /login."""

from __future__ import annotations

from typing import Optional
from urllib.parse import quote

from nicegui import app
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse

from importer import auth
from importer.db import session_scope
from importer.models import User

OPEN_PATHS = {"/login", "/setup"}
OPEN_PREFIXES = ("/_nicegui", "/api/", "/docs", "/redoc", "/openapi.json", "/favicon")


def current_user() -> Optional[User]:
    user_id = app.storage.user.get("user_id")
    if not user_id:
        return None
    with session_scope() as session:
        return auth.get_user(session, user_id)


def log_in(user: User) -> None:
    app.storage.user.update(user_id=user.id, username=user.username)


def log_out() -> None:
    app.storage.user.pop("user_id", None)
    app.storage.user.pop("username", None)


class AuthMiddleware(BaseHTTPMiddleware):
    """Pages need a login; while no user exists, the first-admin page stands in for the login."""

    async def dispatch(self, request: Request, call_next):  # type: ignore[no-untyped-def]
        path = request.url.path
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return await call_next(request)
        if not app.storage.user.get("user_id"):
            target = f"{path}?{request.url.query}" if request.url.query else path
            return RedirectResponse(f"/login?redirect_to={quote(target)}")
        return await call_next(request)
