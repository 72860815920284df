"""The outbox: events written in the caller's transaction, so a crash can neither lose nor invent one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from importer.models import EventType, OutboxEvent

log = logging.getLogger(__name__)

_after_commit_listeners: list[Callable[[], None]] = []
_WAKE = "webhooks.wake_after_commit"


def on_events_committed(listener: Callable[[], None]) -> None:
    """Let the queue layer learn that new work exists, without the core importing it."""
    _after_commit_listeners.append(listener)


def _notify_after_commit(session: OrmSession) -> None:
    """The change is already committed: a failing listener must not turn it into an error."""
    if not session.info.pop(_WAKE, False):
        return
    for listener in _after_commit_listeners:
        try:
            listener()
        except Exception:  # noqa: BLE001 - the periodic sweep delivers whatever a listener missed
            log.warning("could not announce new webhook work; the periodic sweep will pick it up", exc_info=True)


def _forget_after_rollback(session: OrmSession) -> None:
    session.info.pop(_WAKE, None)


event.listen(OrmSession, "after_commit", _notify_after_commit)
event.listen(OrmSession, "after_rollback", _forget_after_rollback)


def wake_after_commit(session: Session) -> None:
    """Announce new webhook work once this transaction commits (never before, never on rollback)."""
    session.info[_WAKE] = True


def record_event(session: Session, event_type: EventType, data: dict[str, Any]) -> OutboxEvent:
    outbox_event = OutboxEvent(event_type=event_type.value, payload=data)
    session.add(outbox_event)
    wake_after_commit(session)
    return outbox_event
