"""`/api/webhooks/`: thin HTTP shapes over importer.webhooks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import Session

from api.deps import CurrentUser, SessionDep
from api.pagination import Page, page_links
from importer.models import (
    Webhook,
    WebhookCreate,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookTestResult,
    WebhookUpdate,
)
from importer.webhooks import delivery, service

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


def _public(session: Session, webhook: Webhook, *, reveal_secret: bool = False) -> WebhookPublic:
    return service.to_public(session, [webhook], reveal_secret=reveal_secret)[0]


@router.get("/", response_model=Page[WebhookPublic])
def list_webhooks(session: SessionDep, _: CurrentUser) -> Page[WebhookPublic]:
    results = service.to_public(session, service.list_webhooks(session))
    return Page[WebhookPublic](count=len(results), next=None, previous=None, results=results)


@router.post("/", status_code=201, response_model=WebhookPublic)
def create_webhook(data: WebhookCreate, session: SessionDep, _: CurrentUser) -> WebhookPublic:
    """The answer carries the full secret; afterwards it is only ever shown masked."""
    return _public(session, service.create_webhook(session, data), reveal_secret=True)


@router.get("/{webhook_id}/", response_model=WebhookPublic)
def get_webhook(webhook_id: int, session: SessionDep, _: CurrentUser) -> WebhookPublic:
    return _public(session, service.get_webhook(session, webhook_id))


@router.put("/{webhook_id}/", response_model=WebhookPublic)
def replace_webhook(webhook_id: int, data: WebhookCreate, session: SessionDep, _: CurrentUser) -> WebhookPublic:
    """A PUT without a secret keeps the current one: replacing it silently would break the receiver."""
    update = WebhookUpdate(**data.model_dump())
    return _public(session, service.update_webhook(session, webhook_id, update))


@router.patch("/{webhook_id}/", response_model=WebhookPublic)
def patch_webhook(webhook_id: int, data: WebhookUpdate, session: SessionDep, _: CurrentUser) -> WebhookPublic:
    return _public(session, service.update_webhook(session, webhook_id, data))


@router.delete("/{webhook_id}/", status_code=204)
def delete_webhook(webhook_id: int, session: SessionDep, _: CurrentUser) -> Response:
    service.delete_webhook(session, webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/regenerate-secret/", response_model=WebhookPublic)
def regenerate_secret(webhook_id: int, session: SessionDep, _: CurrentUser) -> WebhookPublic:
    return _public(session, service.regenerate_secret(session, webhook_id), reveal_secret=True)


@router.post("/{webhook_id}/test/", response_model=WebhookTestResult)
def test_webhook(webhook_id: int, _: CurrentUser) -> WebhookTestResult:
    """Runs in the thread pool: the receiver's slowness (up to the timeout) never blocks other requests."""
    return delivery.send_test(webhook_id)


@router.get("/{webhook_id}/deliveries/", response_model=Page[WebhookDeliveryPublic])
def list_deliveries(
    request: Request,
    webhook_id: int,
    session: SessionDep,
    _: CurrentUser,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=delivery.MAX_LOG_PAGE_SIZE)] = 50,
) -> Page[WebhookDeliveryPublic]:
    count, results = delivery.list_deliveries(session, webhook_id, page=page, page_size=page_size)
    next_url, previous_url = page_links(request, page, page * page_size < count)
    return Page[WebhookDeliveryPublic](count=count, next=next_url, previous=previous_url, results=results)


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver/", status_code=202,
             response_model=WebhookDeliveryPublic)
def redeliver(webhook_id: int, delivery_id: int, session: SessionDep, _: CurrentUser) -> WebhookDeliveryPublic:
    """Queues one more attempt with the same `webhook-id`; the log shows its outcome."""
    delivery.redeliver(session, webhook_id, delivery_id)
    return delivery.delivery_public(session, webhook_id, delivery_id)
