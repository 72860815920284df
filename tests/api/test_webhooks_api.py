"""`/api/webhooks/` over HTTP, with real receivers on 127.0.0.1."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from importer.webhooks import delivery
from tests.webhook_receivers import closed_port_url

WEBHOOK_FIELDS = {"id", "url", "event_type", "is_active", "secret", "disabled_reason", "last_delivery_status",
                  "last_status_code", "last_delivery_at", "created_at", "updated_at"}


def _create(client: TestClient, url: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/webhooks/", json={"url": url, "event_type": "all", **fields})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.usefixtures("allow_loopback")
def test_crud_with_the_secret_shown_once(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created = _create(client, "http://127.0.0.1:9/hook", event_type="product_created")
    assert set(created) == WEBHOOK_FIELDS
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 32
    masked = "whsec_••••" + secret[-4:]
    assert client.get(f"/api/webhooks/{created['id']}/").json()["secret"] == masked
    listed = client.get("/api/webhooks/").json()
    assert listed["count"] == 1 and listed["results"][0]["secret"] == masked

    patched = client.patch(f"/api/webhooks/{created['id']}/", json={"is_active": False}).json()
    assert (patched["is_active"], patched["event_type"], patched["secret"]) == (False, "product_created", masked)
    replaced = client.put(f"/api/webhooks/{created['id']}/",
                          json={"url": "http://127.0.0.1:10/other", "event_type": "all"}).json()
    assert (replaced["url"], replaced["event_type"], replaced["is_active"]) == ("http://127.0.0.1:10/other", "all", True)
    assert replaced["secret"] == masked  # a PUT without a secret keeps it

    regenerated = client.post(f"/api/webhooks/{created['id']}/regenerate-secret/").json()
    assert regenerated["secret"].startswith("whsec_") and regenerated["secret"] != secret
    assert client.delete(f"/api/webhooks/{created['id']}/").status_code == 204
    assert client.get(f"/api/webhooks/{created['id']}/").status_code == 404
    assert secret not in caplog.text and regenerated["secret"] not in caplog.text


@pytest.mark.usefixtures("allow_loopback")
def test_a_given_secret_is_kept(client: TestClient) -> None:
    created = _create(client, "http://127.0.0.1:9/hook", secret="my-own-shared-secret")
    assert created["secret"] == "my-own-shared-secret"
    assert client.get(f"/api/webhooks/{created['id']}/").json()["secret"] == "••••cret"


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"url": "http://10.0.0.1/hook", "event_type": "all"}, 422, "blocked by policy: 10.0.0.1 is a private address"),
    ({"url": "http://169.254.169.254/", "event_type": "all"}, 422, "169.254.169.254 is a link-local address"),
    ({"url": "http://127.0.0.1:9/hook", "event_type": "all"}, 422, "127.0.0.1 is a loopback address"),
    ({"url": "file:///etc/passwd", "event_type": "all"}, 422, "url: must start with http:// or https://"),
    ({"url": "https://8.8.8.8/hook", "event_type": "product_renamed"}, 422, "event_type"),
    ({"url": "https://8.8.8.8/hook", "event_type": "all", "secret": "short"}, 422, "at least 16 characters"),
])
def test_invalid_webhooks_are_refused_clearly(client: TestClient, body: dict[str, Any], status: int,
                                             detail: str) -> None:
    response = client.post("/api/webhooks/", json=body)
    assert response.status_code == status and detail in response.json()["detail"]
    assert client.get("/api/webhooks/").json()["count"] == 0


@pytest.mark.usefixtures("allow_loopback")
def test_the_test_endpoint_reports_outcomes(client: TestClient, receivers, webhook_settings) -> None:  # noqa: F811
    ok = _create(client, receivers().url)
    answer = client.post(f"/api/webhooks/{ok['id']}/test/").json()
    assert set(answer) == {"ok", "status_code", "response_time_ms", "error"}
    assert (answer["ok"], answer["status_code"], answer["error"]) == (True, 200, None)
    assert answer["response_time_ms"] >= 0

    failing = _create(client, receivers(status=500).url)
    assert client.post(f"/api/webhooks/{failing['id']}/test/").json()["error"] == "HTTP 500 Internal Server Error"
    refused = _create(client, closed_port_url())
    assert client.post(f"/api/webhooks/{refused['id']}/test/").json() == {
        "ok": False, "status_code": None, "response_time_ms": pytest.approx(0, abs=5000), "error": "connection refused"}
    webhook_settings(WEBHOOK_TIMEOUT="0.3")
    slow = _create(client, receivers(delay=2).url)
    assert client.post(f"/api/webhooks/{slow['id']}/test/").json()["error"] == "timed out after 0.3 s"
    webhook_settings(WEBHOOK_ALLOWED_NETWORKS="")
    blocked = client.post(f"/api/webhooks/{ok['id']}/test/").json()
    assert blocked["ok"] is False and blocked["error"] == "blocked by policy: 127.0.0.1 is a loopback address"
    assert client.post("/api/webhooks/999/test/").status_code == 404


@pytest.mark.usefixtures("allow_loopback")
def test_the_delivery_log_and_redelivery(client: TestClient, receivers) -> None:  # noqa: F811
    receiver = receivers(status=500)
    hook = _create(client, receiver.url, event_type="product_created")
    client.post("/api/products/", json={"sku": "SKU-1", "name": "First"})
    client.post("/api/products/", json={"sku": "SKU-2", "name": "Second"})
    delivery.dispatch_events()
    for delivery_id in delivery.due_delivery_ids():
        delivery.attempt_delivery(delivery_id)

    log = client.get(f"/api/webhooks/{hook['id']}/deliveries/", params={"page_size": 1})
    assert log.status_code == 200, log.text
    page = log.json()
    assert page["count"] == 2 and page["next"] and page["previous"] is None
    (newest,) = page["results"]
    assert newest["payload"]["data"]["sku"] == "SKU-2" and newest["status"] == "pending"
    assert newest["attempts"][0]["status_code"] == 500 and newest["attempts"][0]["error"] == "HTTP 500 Internal Server Error"
    assert set(newest["attempts"][0]) == {"attempt", "attempted_at", "status_code", "response_time_ms", "error"}
    assert client.get(f"/api/webhooks/{hook['id']}/").json()["last_delivery_status"] == "pending"

    redeliver = f"/api/webhooks/{hook['id']}/deliveries/{newest['id']}/redeliver/"
    assert client.post(redeliver).status_code == 409  # still in its retry schedule
    assert client.post(f"/api/webhooks/{hook['id']}/test/").json()["ok"] is False
    test_id = client.get(f"/api/webhooks/{hook['id']}/deliveries/").json()["results"][0]["id"]
    receiver.status = 200
    queued = client.post(f"/api/webhooks/{hook['id']}/deliveries/{test_id}/redeliver/")
    assert queued.status_code == 202 and queued.json()["status"] == "pending"
    delivery.attempt_delivery(test_id)
    resent = client.get(f"/api/webhooks/{hook['id']}/deliveries/").json()["results"][0]
    assert [a["status_code"] for a in resent["attempts"]] == [500, 200] and resent["status"] == "succeeded"
    assert client.get(f"/api/webhooks/{hook['id']}/deliveries/", params={"page": 9}).status_code == 404
    assert client.post(f"/api/webhooks/{hook['id']}/deliveries/12345/redeliver/").status_code == 404


def test_webhooks_need_authentication(anon_client: TestClient) -> None:
    for method, path in (("get", "/api/webhooks/"), ("post", "/api/webhooks/"), ("post", "/api/webhooks/1/test/"),
                         ("get", "/api/webhooks/1/deliveries/")):
        response = getattr(anon_client, method)(path)
        assert response.status_code == 401 and "detail" in response.json()
