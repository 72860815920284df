"""Users, password hashing and API tokens.

Passwords are hashed with Argon2. Tokens are random and shown once; only their SHA-256 is
stored, which is enough for a high-entropy secret and keeps lookups a single index probe.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select, text, update
from sqlmodel import Session

from importer.db import get_engine
from importer.errors import Conflict, InvalidInput
from importer.models import ApiToken, User, utcnow

TOKEN_PREFIX = "pi_"
MIN_PASSWORD_LENGTH = 8
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
_hasher = PasswordHasher()


def has_users(session: Session) -> bool:
    return session.execute(select(func.count()).select_from(User)).scalar_one() > 0


class SetupDone(Conflict):
    """The one-time first-admin set-up was already used."""


def create_first_admin(session: Session, username: str, password: str) -> User:
    """The set-up page's account: refused once any user exists, even when two browsers race for it.

    PostgreSQL: the table lock makes the second creator wait and then see the first user.
    SQLite takes one writer at a time, so the second creator counts two users and rolls back.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
    if has_users(session):
        raise SetupDone("An administrator already exists; please log in.")
    user = create_user(session, username, password)
    if session.execute(select(func.count()).select_from(User)).scalar_one() > 1:
        raise SetupDone("An administrator already exists; please log in.")
    return user


def create_user(session: Session, username: str, password: str, *, is_admin: bool = True) -> User:
    username = username.strip()
    if not username:
        raise InvalidInput("username: must not be empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password: must be at least {MIN_PASSWORD_LENGTH} characters")
    if session.execute(select(User.id).where(User.username == username)).first():
        raise Conflict(f"username: {username!r} is taken")
    user = User(username=username, password_hash=_hasher.hash(password), is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> Optional[User]:
    user = session.execute(select(User).where(User.username == username.strip())).scalar_one_or_none()
    if user is None:
        _hasher.hash(password)  # same cost as a real check, so timing does not reveal usernames
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def get_user(session: Session, user_id: int) -> Optional[User]:
    return session.get(User, user_id)


def get_user_by_name(session: Session, username: str) -> Optional[User]:
    return session.execute(select(User).where(User.username == username.strip())).scalar_one_or_none()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User) -> str:
    """Returns the token in clear; it cannot be recovered later."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_digest(token)))
    session.flush()
    return token


def _record_token_use(token_id: int) -> None:
    """At most one write a minute per token, committed on its own: the request that presents the
    token may run for minutes (a 1 GB upload) and must hold neither SQLite's only write lock
    nor a row lock on the token while it does."""
    now = utcnow()
    stale = or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - TOKEN_TOUCH_INTERVAL)
    with get_engine().begin() as connection:
        connection.execute(update(ApiToken).where(ApiToken.id == token_id, stale).values(last_used_at=now))


def user_for_token(session: Session, token: str) -> Optional[User]:
    api_token = session.execute(select(ApiToken).where(ApiToken.token_hash == _digest(token))).scalar_one_or_none()
    if api_token is None:
        return None
    if api_token.last_used_at is None or utcnow() - api_token.last_used_at > TOKEN_TOUCH_INTERVAL:
        _record_token_use(api_token.id)  # type: ignore[arg-type]
    return session.get(User, api_token.user_id)
