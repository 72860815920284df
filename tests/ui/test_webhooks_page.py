"""The Webhooks page in NiceGUI's simulated browser, with real receivers and main.py's queue consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from nicegui import ElementFilter, ui
from nicegui.testing import User
from sqlalchemy import select

from importer import products
from importer.db import session_scope
from importer.models import EventType, ProductCreate, Webhook, WebhookCreate, WebhookDelivery
from importer.webhooks import service
from tests.webhook_receivers import closed_port_url

pytestmark = [pytest.mark.ui, pytest.mark.usefixtures("allow_loopback")]


def _make_webhook(url: str, event_type: EventType = EventType.all) -> Webhook:
    with session_scope() as session:
        return service.create_webhook(session, WebhookCreate(url=url, event_type=event_type))


def _webhooks() -> list[Webhook]:
    with session_scope() as session:
        return list(session.execute(select(Webhook).order_by(Webhook.id)).scalars())


async def _eventually(check: Callable[[], Any], what: str) -> Any:
    for _ in range(200):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _open(user: User) -> None:
    await user.open("/webhooks")
    await user.should_see(marker="add-webhook")


def _value(user: User, marker: str) -> Any:
    return user.find(marker=marker).elements.pop().value


async def test_adding_a_webhook_shows_its_secret_once(logged_in_user: User, receivers) -> None:  # noqa: F811
    user = logged_in_user
    await _open(user)
    await user.should_see(marker="webhooks-empty")
    user.find(marker="add-webhook").click()
    user.find(marker="webhook-url-input").type(receivers().url)
    user.find(marker="webhook-event-input").click()
    user.find("Product deleted").click()
    user.find(marker="webhook-save").click()
    await user.should_see(marker="secret-dialog", retries=50)
    (webhook,) = await _eventually(_webhooks, "the webhook to be stored")
    assert webhook.event_type == "product_deleted" and webhook.is_active
    assert _value(user, "secret-value") == webhook.secret and webhook.secret.startswith("whsec_")
    user.find(marker="secret-done").click()
    await user.should_see(webhook.url)
    await user.should_see("Product deleted · secret whsec_••••" + webhook.secret[-4:])
    await user.should_see("No deliveries yet")


async def test_a_blocked_url_is_refused_with_the_reason(logged_in_user: User) -> None:
    user = logged_in_user
    await _open(user)
    user.find(marker="add-webhook").click()
    user.find(marker="webhook-url-input").type("http://10.0.0.1/hook")
    user.find(marker="webhook-save").click()
    await user.should_see("blocked by policy: 10.0.0.1 is a private address")
    await user.should_see(marker="webhook-dialog")
    assert _webhooks() == []


async def test_editing_keeps_the_secret_unless_a_new_one_is_given(logged_in_user: User, receivers) -> None:  # noqa: F811
    user = logged_in_user
    original = _make_webhook(receivers().url)
    new_url = receivers().url
    await _open(user)
    user.find(marker=f"edit-{original.id}").click()
    user.find(marker="webhook-url-input").clear().type(new_url)
    user.find(marker="webhook-event-input").click()
    user.find("Product updated").click()
    user.find(marker="webhook-save").click()
    await user.should_see("Webhook saved.")
    (edited,) = _webhooks()
    assert (edited.url, edited.event_type, edited.secret) == (new_url, "product_updated", original.secret)
    await user.should_see(new_url)

    user.find(marker=f"edit-{original.id}").click()
    user.find(marker="webhook-secret-input").type("a-brand-new-shared-secret")
    user.find(marker="webhook-save").click()
    await _eventually(lambda: _webhooks()[0].secret == "a-brand-new-shared-secret", "the new secret to be stored")


async def test_the_test_button_shows_the_outcome(logged_in_user: User, receivers) -> None:  # noqa: F811
    user = logged_in_user
    receiver = receivers()
    working = _make_webhook(receiver.url)
    dead = _make_webhook(closed_port_url())
    await _open(user)
    user.find(marker=f"test-{working.id}").click()
    await user.should_see("Test delivered: HTTP 200 in", retries=50)
    (request,) = receiver.wait_for(1)
    assert request.json["type"] == "webhook_test"
    user.find(marker=f"test-{dead.id}").click()
    await user.should_see("Test failed: connection refused", retries=50)
    await user.should_see(marker=f"test-result-{dead.id}")


async def test_toggling_enables_and_disables(logged_in_user: User) -> None:
    user = logged_in_user
    webhook = _make_webhook("http://127.0.0.1:9/hook")
    await _open(user)
    user.find(marker=f"toggle-{webhook.id}").click()
    await user.should_see("Webhook disabled.")
    assert _webhooks()[0].is_active is False
    user.find(marker=f"toggle-{webhook.id}").click()
    await user.should_see("Webhook enabled.")
    assert _webhooks()[0].is_active is True


async def test_deleting_asks_first(logged_in_user: User) -> None:
    user = logged_in_user
    webhook = _make_webhook("http://127.0.0.1:9/hook")
    await _open(user)
    user.find(marker=f"delete-{webhook.id}").click()
    await user.should_see(marker="confirm-dialog")
    user.find(marker="confirm-no").click()
    assert len(_webhooks()) == 1
    user.find(marker=f"delete-{webhook.id}").click()
    user.find(marker="confirm-yes").click()
    await user.should_see("Webhook deleted.")
    await user.should_see(marker="webhooks-empty")
    assert _webhooks() == []


async def test_regenerating_shows_the_new_secret(logged_in_user: User) -> None:
    user = logged_in_user
    webhook = _make_webhook("http://127.0.0.1:9/hook")
    await _open(user)
    user.find(marker=f"regenerate-{webhook.id}").click()
    user.find(marker="confirm-yes").click()
    await user.should_see(marker="secret-dialog", retries=50)
    renewed = _webhooks()[0].secret
    assert renewed != webhook.secret and _value(user, "secret-value") == renewed


async def test_the_delivery_log_shows_attempts_and_re_sends(logged_in_user: User, receivers) -> None:  # noqa: F811
    user = logged_in_user
    receiver = receivers(status=500)
    webhook = _make_webhook(receiver.url, EventType.product_created)
    await _open(user)
    user.find(marker=f"log-{webhook.id}").click()
    await user.should_see(marker="log-empty")
    user.find(marker="log-close").click()

    with session_scope() as session:
        products.create_product(session, ProductCreate(sku="SKU-1", name="Logged"))

    def failed_delivery() -> Any:
        with session_scope() as session:
            return session.execute(select(WebhookDelivery).where(WebhookDelivery.status == "failed")).scalar()

    failed = await _eventually(failed_delivery, "the retries to run out")
    await user.should_see("Failed · 500", retries=100)
    user.find(marker=f"log-{webhook.id}").click()
    await user.should_see(marker=f"delivery-{failed.id}")
    await user.should_see("Product created · Failed")
    entry = user.find(marker=f"delivery-{failed.id}").elements.pop()
    assert entry.props["caption"] == "3 attempt(s) · HTTP 500 Internal Server Error"
    with user.client:
        rows = ElementFilter(kind=ui.label, content="HTTP 500 Internal Server Error").within(
            marker=f"delivery-{failed.id}")
        assert len(list(rows)) == 3  # one row per attempt

    receiver.status = 200
    user.find(marker=f"resend-{failed.id}").click()
    await user.should_see("Re-send queued")
    await _eventually(lambda: len(receiver.received) == 4, "the re-sent request")
    await user.should_see("Product created · Delivered", retries=100)
    assert {r.headers["webhook-id"] for r in receiver.received} == {failed.message_id}
