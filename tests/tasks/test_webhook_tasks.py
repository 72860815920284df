"""Webhook delivery through the real queue: Huey consumer threads, SQLite or Redis, real receivers."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from importer import products
from importer.db import session_scope
from importer.models import EventType, OutboxEvent, ProductCreate, ProductUpdate, WebhookCreate, WebhookDelivery
from importer.webhooks import service
from tasks import huey
from tests.webhook_receivers import wait_until

pytestmark = pytest.mark.usefixtures("allow_loopback")


def make_webhook(url: str, event_type: EventType = EventType.all) -> int:
    with session_scope() as session:
        return service.create_webhook(session, WebhookCreate(url=url, event_type=event_type)).id  # type: ignore[return-value]


def deliveries() -> list[WebhookDelivery]:
    with session_scope() as session:
        return list(session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)).scalars())


def change_the_catalogue() -> None:
    with session_scope() as session:
        product = products.create_product(session, ProductCreate(sku="SKU-1", name="First"))
    with session_scope() as session:
        products.update_product(session, product.id, ProductUpdate(name="Renamed"), partial=True)
    with session_scope() as session:
        products.delete_product(session, product.id)
    with session_scope() as session:
        products.create_product(session, ProductCreate(sku="SKU-2", name="Second"))
    with session_scope() as session:
        products.delete_all_products(session)


def test_every_change_reaches_the_receiver(worker, receivers) -> None:  # noqa: F811
    everything, deletions = receivers(), receivers()
    make_webhook(everything.url)
    make_webhook(deletions.url, EventType.all_products_deleted)
    change_the_catalogue()
    received = everything.wait_for(5)
    assert sorted(r.json["type"] for r in received) == sorted(
        ["product_created", "product_updated", "product_deleted", "product_created", "all_products_deleted"])
    (deleted_all,) = deletions.wait_for(1)
    assert deleted_all.json["data"] == {"deleted": 1}
    wait_until(lambda: {d.status for d in deliveries()} == {"succeeded"}, message="every delivery to succeed")


def test_a_failing_receiver_is_retried_by_the_queue(worker, receivers) -> None:  # noqa: F811
    receiver = receivers(status=500)
    make_webhook(receiver.url)
    with session_scope() as session:
        products.create_product(session, ProductCreate(sku="SKU-1", name="First"))
    wait_until(lambda: deliveries() and deliveries()[0].status == "failed", message="the retries to run out")
    requests = receiver.wait_for(3)
    assert len(requests) == 3 and len({r.headers["webhook-id"] for r in requests}) == 1
    assert deliveries()[0].attempts == 3


@pytest.mark.parametrize("announcement_lost", [False, True], ids=["queued", "queue-flushed"])
def test_an_event_made_while_no_worker_runs_is_delivered_when_one_starts(
    request: pytest.FixtureRequest, receivers, announcement_lost: bool,  # noqa: F811
) -> None:
    receiver = receivers()
    make_webhook(receiver.url)
    with session_scope() as session:
        products.create_product(session, ProductCreate(sku="WHILE-DOWN", name="Made with no worker"))
    with session_scope() as session:
        assert session.execute(select(OutboxEvent.dispatched_at)).scalars().all() == [None]
    assert deliveries() == []
    if announcement_lost:
        huey.flush()  # the queue lost the announcement (Redis restarted, say); the database still has the event
    request.getfixturevalue("worker")
    (delivered,) = receiver.wait_for(1)
    assert delivered.json["data"]["sku"] == "WHILE-DOWN"
    wait_until(lambda: [d.status for d in deliveries()] == ["succeeded"], message="the delivery to be logged")


def test_slow_receivers_do_not_hold_the_queue(worker, receivers, webhook_settings) -> None:  # noqa: F811
    """While three receivers hang, the queue still dispatches the next event and another receiver gets it."""
    webhook_settings(WEBHOOK_TIMEOUT="30")
    release = threading.Event()
    hanging = [receivers(hold=release) for _ in range(3)]
    for receiver in hanging:
        make_webhook(receiver.url, EventType.product_created)
    prompt = receivers()
    make_webhook(prompt.url, EventType.product_updated)
    with session_scope() as session:
        product = products.create_product(session, ProductCreate(sku="SKU-1", name="First"))
    for receiver in hanging:
        receiver.wait_for(1)
    with session_scope() as session:
        products.update_product(session, product.id, ProductUpdate(name="Renamed"), partial=True)
    (update,) = prompt.wait_for(1)
    assert update.json["type"] == "product_updated"
    assert not release.is_set()
    release.set()
    wait_until(lambda: {d.status for d in deliveries()} == {"succeeded"}, message="the held deliveries to finish")


def test_an_import_sends_one_summary_event(worker, receivers) -> None:  # noqa: F811
    from pathlib import Path

    from importer import jobs
    from tasks.imports import enqueue_import

    everything, imports = receivers(), receivers()
    make_webhook(everything.url)
    make_webhook(imports.url, EventType.product_imported)
    with session_scope() as session:
        upload = jobs.import_local_file(session, Path(__file__).parents[1] / "data" / "products_100.csv", user_id=None)
    enqueue_import(upload.id)
    (summary,) = imports.wait_for(1)
    assert summary.json["type"] == "product_imported"
    assert summary.json["data"]["upload_id"] == upload.id and summary.json["data"]["created"] == 100
    wait_until(lambda: len(deliveries()) == 2 and {d.status for d in deliveries()} == {"succeeded"},
               message="both deliveries to succeed")
    assert [r.json["type"] for r in everything.received] == ["product_imported"]  # never one event per row
