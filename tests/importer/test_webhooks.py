"""Webhook core: outbox, URL policy, signing and delivery against real HTTP receivers."""

from __future__ import annotations

import time
from typing import Optional

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook as Verifier

from importer import products
from importer.db import session_scope
from importer.errors import InvalidInput
from importer.models import (
    DeliveryAttempt,
    EventType,
    OutboxEvent,
    Product,
    ProductCreate,
    Webhook,
    WebhookCreate,
    WebhookDelivery,
    WebhookUpdate,
)
from importer.webhooks import delivery, policy, service, signing
from tests.webhook_receivers import closed_port_url

pytestmark = pytest.mark.usefixtures("allow_loopback")


def make_webhook(url: str, event_type: EventType = EventType.all, secret: Optional[str] = None) -> Webhook:
    with session_scope() as session:
        return service.create_webhook(session, WebhookCreate(url=url, event_type=event_type, secret=secret))


def create_product(sku: str = "SKU-1") -> Product:
    with session_scope() as session:
        return products.create_product(session, ProductCreate(sku=sku, name="A product"))


def deliveries() -> list[WebhookDelivery]:
    with session_scope() as session:
        return list(session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)).scalars())


def attempts_of(delivery_id: int) -> list[DeliveryAttempt]:
    with session_scope() as session:
        return list(session.execute(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)
                                    .order_by(DeliveryAttempt.attempt)).scalars())


def deliver_until_settled(delivery_id: int) -> None:
    """Every attempt the schedule allows, waiting the configured (short) delays between them."""
    retry_in = delivery.attempt_delivery(delivery_id)
    while retry_in is not None:
        time.sleep(retry_in)
        retry_in = delivery.attempt_delivery(delivery_id)


def dispatched_delivery(url: str, secret: Optional[str] = None) -> WebhookDelivery:
    make_webhook(url, secret=secret)
    create_product()
    delivery.dispatch_events()
    (only,) = deliveries()
    return only


# --- outbox ---------------------------------------------------------------------------------


def test_an_event_is_written_only_with_its_change() -> None:
    with pytest.raises(RuntimeError):
        with session_scope() as session:
            products.create_product(session, ProductCreate(sku="GONE", name="rolled back"))
            raise RuntimeError("crash before commit")
    create_product("KEPT")
    with session_scope() as session:
        events = list(session.execute(select(OutboxEvent)).scalars())
    assert [(event.event_type, event.payload["sku"]) for event in events] == [("product_created", "KEPT")]


def test_deleting_every_product_is_one_event() -> None:
    for number in range(5):
        create_product(f"SKU-{number}")
    with session_scope() as session:
        products.delete_all_products(session)
    with session_scope() as session:
        types = list(session.execute(select(OutboxEvent.event_type).order_by(OutboxEvent.id)).scalars())
    assert types == ["product_created"] * 5 + ["all_products_deleted"]


def test_events_fan_out_to_matching_active_webhooks_once(receivers) -> None:  # noqa: F811
    url = receivers().url
    every = make_webhook(url, EventType.all)
    created_only = make_webhook(url, EventType.product_created)
    make_webhook(url, EventType.product_deleted)
    with session_scope() as session:
        service.update_webhook(session, make_webhook(url).id, WebhookUpdate(is_active=False))
    create_product()
    assert delivery.dispatch_events() == 1
    assert delivery.dispatch_events() == 0
    assert sorted(d.webhook_id for d in deliveries()) == sorted([every.id, created_only.id])
    assert len({d.message_id for d in deliveries()}) == 2


# --- URL policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:9/hook", "blocked by policy: 127.0.0.1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "blocked by policy: 169.254.169.254 is a link-local address"),
    ("https://10.0.0.1/hook", "blocked by policy: 10.0.0.1 is a private address"),
    ("http://localhost:9/hook", "blocked by policy: localhost resolves to"),
    ("http://[::1]/hook", "blocked by policy: ::1 is a loopback address"),
    ("ftp://example.com/hook", "url: must start with http:// or https://"),
    ("https:///nohost", "url: must name a host"),
])
def test_urls_outside_the_policy_are_refused(webhook_settings, url: str, message: str) -> None:  # noqa: F811
    webhook_settings(WEBHOOK_ALLOWED_NETWORKS="")
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace(".", r"\.")):
        policy.check_url(url)
    with pytest.raises(InvalidInput):
        make_webhook(url)


def test_allow_list_admits_hosts_and_networks(webhook_settings) -> None:  # noqa: F811
    webhook_settings(WEBHOOK_ALLOWED_NETWORKS="localhost, 10.0.0.0/8")
    policy.check_url("http://localhost:9/hook")
    policy.check_url("http://10.1.2.3/hook")
    with pytest.raises(policy.BlockedByPolicy, match="192.168.1.1 is a private address"):
        policy.check_url("http://192.168.1.1/hook")


def test_policy_is_checked_again_at_delivery(receivers, webhook_settings) -> None:  # noqa: F811
    receiver = receivers()
    pending = dispatched_delivery(receiver.url)
    webhook_settings(WEBHOOK_ALLOWED_NETWORKS="", WEBHOOK_RETRY_DELAYS="0")
    deliver_until_settled(pending.id)
    (attempt,) = attempts_of(pending.id)
    assert attempt.error == "blocked by policy: 127.0.0.1 is a loopback address"
    assert attempt.status_code is None
    assert receiver.received == []


# --- secrets and signatures -----------------------------------------------------------------


def test_secrets_are_generated_validated_and_masked() -> None:
    generated = signing.generate_secret()
    assert generated.startswith("whsec_") and len(signing.signing_key(generated)) == 24
    assert signing.mask_secret(generated) == "whsec_••••" + generated[-4:]
    assert signing.mask_secret("a-plain-shared-secret") == "••••cret"
    for bad, message in (("whsec_not*base64", "valid base64"), ("whsec_c2hvcnQ=", "24-64 bytes"),
                         ("short", "at least 16 characters")):
        with pytest.raises(InvalidInput, match=message):
            signing.validate_secret(bad)


def test_regenerating_replaces_the_secret() -> None:
    webhook = make_webhook("http://127.0.0.1:9/hook")
    with session_scope() as session:
        renewed = service.regenerate_secret(session, webhook.id)
    assert renewed.secret != webhook.secret and renewed.secret.startswith("whsec_")


@pytest.mark.parametrize("secret", [None, "plain-secret-of-some-length"])
def test_signature_verifies_with_standard_webhooks(receivers, secret: Optional[str]) -> None:  # noqa: F811
    receiver = receivers()
    pending = dispatched_delivery(receiver.url, secret)
    with session_scope() as session:
        stored_secret = session.get(Webhook, pending.webhook_id).secret
    deliver_until_settled(pending.id)
    (request,) = receiver.wait_for(1)
    # the library takes a `whsec_` string, or the raw key bytes, which for a plain secret are its UTF-8 bytes
    verifier = Verifier(stored_secret if stored_secret.startswith("whsec_") else stored_secret.encode())
    payload = verifier.verify(request.body, request.headers)
    assert payload["type"] == "product_created" and payload["data"]["sku"] == "SKU-1"
    assert request.headers["webhook-id"] == pending.message_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["content-type"] == "application/json"
    forged = Verifier(signing.generate_secret())
    with pytest.raises(Exception, match="signature"):
        forged.verify(request.body, request.headers)


# --- delivery outcomes ----------------------------------------------------------------------


def test_success_is_logged_with_code_and_time(receivers) -> None:  # noqa: F811
    pending = dispatched_delivery(receivers(status=204).url)
    deliver_until_settled(pending.id)
    (attempt,) = attempts_of(pending.id)
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 204, None)
    assert attempt.response_time_ms is not None and attempt.response_time_ms >= 0
    assert deliveries()[0].status == "succeeded"


def test_server_errors_are_retried_on_schedule_with_a_stable_id(receivers) -> None:  # noqa: F811
    receiver = receivers(status=500)
    pending = dispatched_delivery(receiver.url)
    deliver_until_settled(pending.id)
    requests = receiver.wait_for(3)
    assert len(requests) == 3  # WEBHOOK_RETRY_DELAYS=0,0.2,0.4 in the tests: three attempts
    assert {r.headers["webhook-id"] for r in requests} == {pending.message_id}
    assert len({r.body for r in requests}) == 1
    assert [(a.attempt, a.status_code, a.error) for a in attempts_of(pending.id)] == [
        (n, 500, "HTTP 500 Internal Server Error") for n in (1, 2, 3)]
    final = deliveries()[0]
    assert (final.status, final.next_attempt_at, final.last_error) == ("failed", None, "HTTP 500 Internal Server Error")


def test_a_late_success_ends_the_retries(receivers) -> None:  # noqa: F811
    receiver = receivers(status=503)
    pending = dispatched_delivery(receiver.url)
    assert delivery.attempt_delivery(pending.id) is not None
    assert delivery.attempt_delivery(pending.id) is None  # not due yet: nothing is sent
    receiver.status = 200
    time.sleep(0.2)
    assert delivery.attempt_delivery(pending.id) is None
    assert [a.status_code for a in attempts_of(pending.id)] == [503, 200]
    assert deliveries()[0].status == "succeeded"


def test_a_slow_receiver_times_out_and_is_retried(receivers, webhook_settings) -> None:  # noqa: F811
    webhook_settings(WEBHOOK_TIMEOUT="0.5", WEBHOOK_RETRY_DELAYS="0,0.1")
    receiver = receivers(delay=3)
    pending = dispatched_delivery(receiver.url)
    deliver_until_settled(pending.id)
    assert [(a.status_code, a.error) for a in attempts_of(pending.id)] == [(None, "timed out after 0.5 s")] * 2
    assert deliveries()[0].status == "failed"


def test_a_redirect_is_a_failure_and_is_not_followed(receivers) -> None:  # noqa: F811
    target = receivers()
    redirecting = receivers(status=302, headers={"location": target.url})
    pending = dispatched_delivery(redirecting.url)
    deliver_until_settled(pending.id)
    assert [a.error for a in attempts_of(pending.id)] == [f"redirect (302) to {target.url} not followed"] * 3
    assert target.received == []


def test_gone_disables_the_webhook_without_retrying(receivers) -> None:  # noqa: F811
    receiver = receivers(status=410)
    pending = dispatched_delivery(receiver.url)
    deliver_until_settled(pending.id)
    assert [(a.status_code, a.error) for a in attempts_of(pending.id)] == [(410, "HTTP 410 Gone")]
    with session_scope() as session:
        webhook = session.get(Webhook, pending.webhook_id)
    assert webhook.is_active is False and "410 Gone" in webhook.disabled_reason
    create_product("SKU-2")
    assert delivery.dispatch_events() == 1
    assert len(deliveries()) == 1  # a disabled webhook gets no new deliveries


def test_a_refused_connection_is_retried(receivers) -> None:  # noqa: F811
    pending = dispatched_delivery(closed_port_url())
    deliver_until_settled(pending.id)
    assert [(a.attempt, a.status_code, a.error) for a in attempts_of(pending.id)] == [
        (n, None, "connection refused") for n in (1, 2, 3)]


def test_a_delivery_is_not_sent_once_its_webhook_is_disabled(receivers) -> None:  # noqa: F811
    receiver = receivers()
    pending = dispatched_delivery(receiver.url)
    with session_scope() as session:
        service.update_webhook(session, pending.webhook_id, WebhookUpdate(is_active=False))
    deliver_until_settled(pending.id)
    assert receiver.received == [] and attempts_of(pending.id) == []
    assert deliveries()[0].last_error == "not sent: the webhook was disabled before delivery"


def test_a_delivery_is_attempted_once_even_when_asked_twice(receivers) -> None:  # noqa: F811
    receiver = receivers()
    pending = dispatched_delivery(receiver.url)
    delivery.attempt_delivery(pending.id)
    delivery.attempt_delivery(pending.id)
    assert len(receiver.wait_for(1)) == 1 and len(attempts_of(pending.id)) == 1


def test_redelivery_sends_the_same_message_again(receivers) -> None:  # noqa: F811
    receiver = receivers(status=500)
    pending = dispatched_delivery(receiver.url)
    deliver_until_settled(pending.id)
    receiver.status = 200
    with session_scope() as session:
        delivery.redeliver(session, pending.webhook_id, pending.id)
    deliver_until_settled(pending.id)
    requests = receiver.wait_for(4)
    assert {r.headers["webhook-id"] for r in requests} == {pending.message_id}
    assert [a.status_code for a in attempts_of(pending.id)] == [500, 500, 500, 200]
    assert deliveries()[0].status == "succeeded"


def test_the_test_event_is_sent_now_and_logged(receivers) -> None:  # noqa: F811
    receiver = receivers()
    webhook = make_webhook(receiver.url, EventType.product_deleted)
    result = delivery.send_test(webhook.id)
    assert result.ok and result.status_code == 200 and result.error is None and result.response_time_ms >= 0
    (request,) = receiver.wait_for(1)
    payload = Verifier(webhook.secret).verify(request.body, request.headers)
    assert payload["type"] == "webhook_test"
    with session_scope() as session:
        count, log = delivery.list_deliveries(session, webhook.id)
    assert count == 1 and log[0].event_type == "webhook_test" and log[0].attempts[0].status_code == 200


def test_the_test_event_reports_failures_in_words(receivers, webhook_settings) -> None:  # noqa: F811
    webhook = make_webhook(closed_port_url())
    assert delivery.send_test(webhook.id).error == "connection refused"
    webhook_settings(WEBHOOK_ALLOWED_NETWORKS="")
    result = delivery.send_test(webhook.id)
    assert not result.ok and result.error == "blocked by policy: 127.0.0.1 is a loopback address"
    with session_scope() as session:
        assert session.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one() == 2
        assert all(d.status == "failed" for d in session.execute(select(WebhookDelivery)).scalars())


def test_work_is_announced_after_each_commit_and_never_after_a_rollback() -> None:
    from sqlmodel import Session

    from importer import webhooks
    from importer.db import get_engine
    from importer.webhooks import outbox

    announcements: list[str] = []
    webhooks.on_events_committed(lambda: announcements.append("new work"))
    try:
        with Session(get_engine()) as session:
            webhooks.record_event(session, EventType.product_created, {"n": 1})
            assert announcements == []
            session.commit()
            webhooks.record_event(session, EventType.product_created, {"n": 2})
            session.commit()
            webhooks.record_event(session, EventType.product_created, {"n": 3})
            session.rollback()
            session.commit()
    finally:
        outbox._after_commit_listeners.pop()
    assert announcements == ["new work", "new work"]


def test_the_connected_address_is_checked_too(receivers, webhook_settings) -> None:  # noqa: F811
    """Were DNS to change between the check and the connection, the connection itself is refused."""
    from importer.webhooks import sender

    receiver = receivers()
    webhook_settings(WEBHOOK_ALLOWED_NETWORKS="")
    with pytest.raises(policy.BlockedByPolicy, match="127.0.0.1 is a loopback address"):
        sender._post(receiver.url, {}, "{}", timeout=2)
    assert receiver.received == []


def test_a_tls_failure_is_reported_as_such(receivers) -> None:  # noqa: F811
    plain_http = receivers().url
    webhook = make_webhook(plain_http.replace("http://", "https://"))
    result = delivery.send_test(webhook.id)
    assert not result.ok and result.status_code is None
    assert result.error.startswith("TLS failure: ") and "Max retries" not in result.error  # the cause, not the wrapping
