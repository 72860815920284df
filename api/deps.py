"""Request dependencies: a database session per request and the authenticated user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Optional

from fastapi import Depends, HTTPException, Request
from sqlmodel import Session

from importer import auth
from importer.db import session_scope
from importer.models import User


def get_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _session_user_id() -> Optional[int]:
    """The user logged in through the UI, if this request carries its session cookie."""
    from nicegui import app

    try:
        return app.storage.user.get("user_id")
    except RuntimeError:  # no browser session on this request
        return None


def get_current_user(request: Request) -> User:
    """In a session of its own, closed before the endpoint runs: an upload that streams for
    minutes must not keep a connection (on PostgreSQL, a transaction) open from authentication."""
    with session_scope() as session:
        return _authenticate(request, session)


def _authenticate(request: Request, session: Session) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if header:
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "Use 'Authorization: Bearer <token>'.", headers={"WWW-Authenticate": "Bearer"})
        user = auth.user_for_token(session, token.strip())
        if user is None:
            raise HTTPException(401, "Invalid or revoked API token.", headers={"WWW-Authenticate": "Bearer"})
        return user
    user_id = _session_user_id()
    user = auth.get_user(session, user_id) if user_id else None
    if user is None:
        raise HTTPException(401, "Authentication required.", headers={"WWW-Authenticate": "Bearer"})
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
