"""The one-time first-admin set-up holds under a race (two browsers on a fresh install)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from importer import auth
from importer.db import session_scope
from importer.models import User


def test_first_admin_is_refused_once_a_user_exists() -> None:
    with session_scope() as session:
        auth.create_first_admin(session, "first", "long-enough-pw")
    with pytest.raises(auth.SetupDone, match="already exists"), session_scope() as session:
        auth.create_first_admin(session, "second", "long-enough-pw")


def test_racing_first_admins_leave_exactly_one_user() -> None:
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def create(name: str) -> None:
        start.wait()
        try:
            with session_scope() as session:
                auth.create_first_admin(session, name, "long-enough-pw")
            outcomes.append("created")
        except auth.SetupDone:
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(f"admin{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with session_scope() as session:
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == 1
    assert sorted(outcomes) == ["created", "refused", "refused", "refused"]
