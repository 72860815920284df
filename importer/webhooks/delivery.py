"""From outbox to receiver: fan-out, due attempts with backoff, the delivery log, test and re-send.

Every step is a short transaction and all state is in the database, so the queue only ever
carries delivery ids and a lost task costs a delay, never a delivery. No transaction stays
open while a receiver is being called.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Optional

from sqlalchemy import delete, func, select, update
from sqlmodel import Session

from importer.config import get_settings
from importer.db import session_scope
from importer.errors import Conflict, InvalidInput, NotFound
from importer.models import (
    DeliveryAttempt,
    EventType,
    OutboxEvent,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryPublic,
    WebhookTestResult,
    utcnow,
)
from importer.webhooks import outbox, sender, service

log = logging.getLogger(__name__)

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
TEST_EVENT = "webhook_test"
DISPATCH_BATCH = 100
DUE_BATCH = 500
LEASE_MARGIN_SECONDS = 30
KEEP_EVENTS = timedelta(days=7)
KEEP_DELIVERIES = timedelta(days=30)
MAX_LOG_PAGE_SIZE = 200


def message_body(event_type: str, timestamp: str, data: dict) -> str:  # type: ignore[type-arg]
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data})


def _new_delivery(webhook_id: int, event_type: str, body: str, event_id: Optional[int] = None) -> WebhookDelivery:
    now = utcnow()
    return WebhookDelivery(webhook_id=webhook_id, event_id=event_id, event_type=event_type,
                           message_id=f"msg_{uuid.uuid4().hex}", body=body,
                           next_attempt_at=now + timedelta(seconds=get_settings().webhook_retry_delays[0]),
                           created_at=now, updated_at=now)


def _claim_events(session: Session) -> list[int]:
    """Mark a batch dispatched first, so two dispatchers never fan out the same event."""
    batch = (select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None))
             .order_by(OutboxEvent.id).limit(DISPATCH_BATCH))
    claim = (update(OutboxEvent).where(OutboxEvent.id.in_(batch.scalar_subquery()), OutboxEvent.dispatched_at.is_(None))
             .values(dispatched_at=utcnow()).returning(OutboxEvent.id))
    return list(session.execute(claim).scalars())


def _fan_out(session: Session, event_ids: list[int]) -> None:
    events = session.execute(select(OutboxEvent).where(OutboxEvent.id.in_(event_ids)).order_by(OutboxEvent.id)).scalars()
    hooks = list(session.execute(select(Webhook).where(Webhook.is_active.is_(True)).order_by(Webhook.id)).scalars())
    for event in events:
        body = message_body(event.event_type, event.created_at.isoformat(), event.payload)
        for hook in hooks:
            if hook.event_type in (event.event_type, EventType.all.value):
                session.add(_new_delivery(hook.id, event.event_type, body, event.id))  # type: ignore[arg-type]


def dispatch_events() -> int:
    """Turn every undispatched outbox event into deliveries for the active webhooks that want it."""
    dispatched = 0
    while True:
        with session_scope() as session:
            event_ids = _claim_events(session)
            if not event_ids:
                return dispatched
            _fan_out(session, event_ids)
        dispatched += len(event_ids)


def due_delivery_ids() -> list[int]:
    with session_scope() as session:
        statement = (select(WebhookDelivery.id)
                     .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= utcnow())
                     .order_by(WebhookDelivery.next_attempt_at).limit(DUE_BATCH))
        return list(session.execute(statement).scalars())


def _claim_delivery(session: Session, delivery_id: int) -> bool:
    """Lease the delivery for one attempt; if this worker dies, the lease runs out and another retries."""
    now = utcnow()
    lease = now + timedelta(seconds=get_settings().webhook_timeout + LEASE_MARGIN_SECONDS)
    claim = (update(WebhookDelivery)
             .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING,
                    WebhookDelivery.next_attempt_at <= now)
             .values(next_attempt_at=lease))
    return (session.execute(claim).rowcount or 0) == 1


def _finish(delivery: WebhookDelivery, status: str, error: Optional[str]) -> None:
    delivery.status = status
    delivery.next_attempt_at = None
    delivery.last_error = error
    delivery.updated_at = utcnow()


def _retry_delay(attempts_made: int) -> Optional[float]:
    """Seconds to the next attempt; the schedule's gaps, so a late attempt does not bunch up the rest."""
    delays = get_settings().webhook_retry_delays
    if attempts_made >= len(delays):
        return None
    return max(0.0, delays[attempts_made] - delays[attempts_made - 1])


def _record(session: Session, delivery: WebhookDelivery, result: sender.AttemptResult, *, retry: bool) -> Optional[float]:
    """Log the attempt and decide what happens next; returns the delay when a retry is scheduled."""
    delivery.attempts += 1
    session.add(DeliveryAttempt(delivery_id=delivery.id, attempt=delivery.attempts, status_code=result.status_code,  # type: ignore[arg-type]
                                response_time_ms=result.response_time_ms, error=result.error))
    delivery.last_status_code = result.status_code
    log.info("webhook %s delivery %s (%s) attempt %d: %s", delivery.webhook_id, delivery.id, delivery.event_type,
             delivery.attempts, result.error or f"HTTP {result.status_code}")
    delay = None if result.ok or result.gone or not retry else _retry_delay(delivery.attempts)
    if result.ok:
        _finish(delivery, SUCCEEDED, None)
    elif delay is None:
        _finish(delivery, FAILED, result.error)
    else:
        delivery.last_error = result.error
        delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
        delivery.updated_at = utcnow()
    if result.gone:
        service.disable(session, delivery.webhook_id, "The receiver answered 410 Gone, asking for no more deliveries.")
    session.add(delivery)
    return delay


def attempt_delivery(delivery_id: int) -> Optional[float]:
    """Make the next attempt of a due delivery; returns seconds until its retry, if one is scheduled."""
    with session_scope() as session:
        if not _claim_delivery(session, delivery_id):
            return None
        delivery = session.get(WebhookDelivery, delivery_id)
        webhook = session.get(Webhook, delivery.webhook_id) if delivery else None
        if delivery is None or webhook is None:
            return None
        if not webhook.is_active:
            _finish(delivery, FAILED, "not sent: the webhook was disabled before delivery")
            session.add(delivery)
            return None
        url, secret, message_id, body = webhook.url, webhook.secret, delivery.message_id, delivery.body
    result = sender.send(url, secret, message_id, body)
    with session_scope() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        return None if delivery is None else _record(session, delivery, result, retry=True)


def send_test(webhook_id: int) -> WebhookTestResult:
    """A signed `webhook_test` event sent now, logged like any delivery, never retried."""
    with session_scope() as session:
        webhook = service.get_webhook(session, webhook_id)
        now = utcnow()
        body = message_body(TEST_EVENT, now.isoformat(), {"webhook_id": webhook.id, "url": webhook.url})
        delivery = _new_delivery(webhook.id, TEST_EVENT, body)  # type: ignore[arg-type]
        url, secret = webhook.url, webhook.secret
    result = sender.send(url, secret, delivery.message_id, body)
    with session_scope() as session:
        if session.get(Webhook, webhook_id) is not None:
            session.add(delivery)
            session.flush()
            _record(session, delivery, result, retry=False)
    return WebhookTestResult(ok=result.ok, status_code=result.status_code,
                             response_time_ms=result.response_time_ms, error=result.error)


def get_delivery(session: Session, webhook_id: int, delivery_id: int) -> WebhookDelivery:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook_id:
        raise NotFound(f"Delivery {delivery_id} of webhook {webhook_id} not found.")
    return delivery


def redeliver(session: Session, webhook_id: int, delivery_id: int) -> WebhookDelivery:
    """Queue one more attempt of a finished delivery, with the same message id and body."""
    webhook = service.get_webhook(session, webhook_id)
    delivery = get_delivery(session, webhook_id, delivery_id)
    if delivery.status == PENDING:
        raise Conflict("This delivery is already queued; wait for its next attempt.")
    if not webhook.is_active:
        raise Conflict("The webhook is disabled; enable it before re-sending.")
    delivery.status = PENDING
    delivery.next_attempt_at = utcnow()
    delivery.updated_at = utcnow()
    session.add(delivery)
    session.flush()
    outbox.wake_after_commit(session)
    return delivery


def list_deliveries(session: Session, webhook_id: int, *, page: int = 1,
                    page_size: int = 50) -> tuple[int, list[WebhookDeliveryPublic]]:
    """The delivery log of one webhook, newest first, each delivery with all its attempts."""
    service.get_webhook(session, webhook_id)
    if page < 1 or not 1 <= page_size <= MAX_LOG_PAGE_SIZE:
        raise InvalidInput(f"page must be 1 or more and page_size between 1 and {MAX_LOG_PAGE_SIZE}")
    where = WebhookDelivery.webhook_id == webhook_id
    count = session.execute(select(func.count()).select_from(WebhookDelivery).where(where)).scalar_one()
    if page > 1 and (page - 1) * page_size >= count:
        raise NotFound("Invalid page.")
    deliveries = list(session.execute(select(WebhookDelivery).where(where).order_by(WebhookDelivery.id.desc())
                                      .offset((page - 1) * page_size).limit(page_size)).scalars())
    return count, _with_attempts(session, deliveries)


def delivery_public(session: Session, webhook_id: int, delivery_id: int) -> WebhookDeliveryPublic:
    return _with_attempts(session, [get_delivery(session, webhook_id, delivery_id)])[0]


def _with_attempts(session: Session, deliveries: list[WebhookDelivery]) -> list[WebhookDeliveryPublic]:
    attempts: dict[int, list[dict]] = defaultdict(list)  # type: ignore[type-arg]
    if deliveries:
        rows = session.execute(select(DeliveryAttempt)
                               .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
                               .order_by(DeliveryAttempt.attempt)).scalars()
        for attempt in rows:
            attempts[attempt.delivery_id].append(attempt.model_dump())
    return [WebhookDeliveryPublic.model_validate({
        **delivery.model_dump(exclude={"attempts", "body"}),
        "payload": json.loads(delivery.body),
        "attempts": attempts[delivery.id],  # type: ignore[index]
    }) for delivery in deliveries]


def prune_history() -> None:
    """Outbox rows are only a hand-over; the log keeps a month, which is plenty to debug a receiver."""
    now = utcnow()
    with session_scope() as session:
        session.execute(delete(OutboxEvent).where(OutboxEvent.dispatched_at < now - KEEP_EVENTS))
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.status != PENDING,
                                                      WebhookDelivery.updated_at < now - KEEP_DELIVERIES))
