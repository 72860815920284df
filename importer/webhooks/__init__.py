"""Webhooks: outbox events, URL policy, signing, configuration and reliable delivery.

Callers that change the catalogue need only `webhooks.record_event(session, type, data)`;
the queue layer learns about new work through `webhooks.on_events_committed(listener)`.
"""

from importer.webhooks.outbox import on_events_committed, record_event

__all__ = ["on_events_committed", "record_event"]
