"""Webhook events: written to an outbox in the caller's transaction, delivered later by a task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from importer.models import EventType, OutboxEvent

_after_commit_listeners: list[Callable[[], None]] = []


def on_events_committed(listener: Callable[[], None]) -> None:
    """Let the queue layer learn that new events exist, without the core importing it."""
    _after_commit_listeners.append(listener)


def _notify_after_commit(session: Session) -> None:
    for listener in _after_commit_listeners:
        listener()


def record_event(session: Session, event_type: EventType, data: dict[str, Any]) -> OutboxEvent:
    outbox_event = OutboxEvent(event_type=event_type.value, payload=data)
    session.add(outbox_event)
    if not event.contains(session, "after_commit", _notify_after_commit):
        event.listen(session, "after_commit", _notify_after_commit, once=True)
    return outbox_event
