"""Webhook configuration: create, change, enable, delete, and the secret's life cycle."""

from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import func, select
from sqlmodel import Session

from importer.errors import NotFound
from importer.models import Webhook, WebhookCreate, WebhookDelivery, WebhookPublic, WebhookUpdate, utcnow
from importer.webhooks import policy, signing


def get_webhook(session: Session, webhook_id: int) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"Webhook {webhook_id} not found.")
    return webhook


def list_webhooks(session: Session) -> list[Webhook]:
    return list(session.execute(select(Webhook).order_by(Webhook.id)).scalars())


def _secret_or_generated(secret: Optional[str]) -> str:
    return signing.validate_secret(secret) if secret and secret.strip() else signing.generate_secret()


def create_webhook(session: Session, data: WebhookCreate) -> Webhook:
    secret = _secret_or_generated(data.secret)
    policy.check_url(data.url)
    now = utcnow()
    webhook = Webhook(url=data.url, event_type=data.event_type.value, is_active=data.is_active,
                      secret=secret, created_at=now, updated_at=now)
    session.add(webhook)
    session.flush()
    return webhook


def update_webhook(session: Session, webhook_id: int, data: WebhookUpdate) -> Webhook:
    """Change only the fields given; a new URL passes the policy again, a blank secret keeps the old one."""
    webhook = get_webhook(session, webhook_id)
    changes: dict[str, Any] = data.model_dump(exclude_unset=True, exclude_none=True)
    if "url" in changes and changes["url"] != webhook.url:
        policy.check_url(changes["url"])
    if "secret" in changes:
        secret = changes.pop("secret").strip()
        if secret:
            webhook.secret = signing.validate_secret(secret)
    if "event_type" in changes:
        changes["event_type"] = changes["event_type"].value
    if changes.get("is_active"):
        webhook.disabled_reason = None
    for key, value in changes.items():
        setattr(webhook, key, value)
    webhook.updated_at = utcnow()
    session.add(webhook)
    session.flush()
    return webhook


def regenerate_secret(session: Session, webhook_id: int) -> Webhook:
    webhook = get_webhook(session, webhook_id)
    webhook.secret = signing.generate_secret()
    webhook.updated_at = utcnow()
    session.add(webhook)
    session.flush()
    return webhook


def delete_webhook(session: Session, webhook_id: int) -> None:
    session.delete(get_webhook(session, webhook_id))
    session.flush()


def disable(session: Session, webhook_id: int, reason: str) -> None:
    webhook = session.get(Webhook, webhook_id)
    if webhook is not None and webhook.is_active:
        webhook.is_active = False
        webhook.disabled_reason = reason
        webhook.updated_at = utcnow()
        session.add(webhook)


def _last_deliveries(session: Session, webhook_ids: list[int]) -> dict[int, WebhookDelivery]:
    if not webhook_ids:
        return {}
    newest = (select(func.max(WebhookDelivery.id)).where(WebhookDelivery.webhook_id.in_(webhook_ids))
              .group_by(WebhookDelivery.webhook_id))
    rows = session.execute(select(WebhookDelivery).where(WebhookDelivery.id.in_(newest))).scalars()
    return {delivery.webhook_id: delivery for delivery in rows}


def to_public(session: Session, webhooks: list[Webhook], *, reveal_secret: bool = False) -> list[WebhookPublic]:
    """The answer shape, with each webhook's latest delivery; the secret stays masked unless just made."""
    last = _last_deliveries(session, [webhook.id for webhook in webhooks if webhook.id is not None])
    public = []
    for webhook in webhooks:
        delivery = last.get(webhook.id)  # type: ignore[arg-type]
        public.append(WebhookPublic.model_validate({
            **webhook.model_dump(),
            "secret": webhook.secret if reveal_secret else signing.mask_secret(webhook.secret),
            "last_delivery_status": delivery.status if delivery else None,
            "last_status_code": delivery.last_status_code if delivery else None,
            "last_delivery_at": delivery.updated_at if delivery else None,
        }))
    return public
