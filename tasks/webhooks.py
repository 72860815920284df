"""Webhook tasks: thin hand-offs from the queue to importer.webhooks.delivery.

Attempts run on a small thread pool of their own, so receivers that are slow (up to the
timeout) or dead never hold the queue's worker threads, which imports need. The database
holds every delivery's state: a pool job lost with its process is retried after its lease.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from huey import crontab

from importer import webhooks
from importer.webhooks import delivery
from tasks import huey

log = logging.getLogger(__name__)

SENDER_THREADS = 8
_senders = ThreadPoolExecutor(max_workers=SENDER_THREADS, thread_name_prefix="webhook-sender")


def _attempt(delivery_id: int) -> None:
    try:
        retry_in = delivery.attempt_delivery(delivery_id)
    except Exception:  # noqa: BLE001 - the lease expires and the sweep retries
        log.exception("webhook delivery %s failed unexpectedly; it will be retried", delivery_id)
        return
    if retry_in is not None:
        deliver_webhook.schedule((delivery_id,), delay=retry_in)


@huey.task()
def deliver_webhook(delivery_id: int) -> None:
    _senders.submit(_attempt, delivery_id)


@huey.task()
def pump_webhooks() -> None:
    """Fan new outbox events out, then start every attempt that is due."""
    delivery.dispatch_events()
    for delivery_id in delivery.due_delivery_ids():
        _senders.submit(_attempt, delivery_id)


@huey.periodic_task(crontab(minute="*"))
def sweep_webhooks() -> None:
    """Catches what an announcement missed: a worker that was down, a queue hiccup, an expired lease."""
    pump_webhooks.call_local()
    delivery.prune_history()


@huey.on_startup("webhooks-catch-up")
def _catch_up_on_start() -> None:
    pump_webhooks()


webhooks.on_events_committed(pump_webhooks)
