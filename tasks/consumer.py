"""Running Huey consumers: in-process threads (embedded mode) or a worker process (server mode)."""

from __future__ import annotations

import logging

from huey.consumer import Consumer

from tasks import huey

log = logging.getLogger(__name__)


def _load_tasks() -> None:
    """Import every task module so the consumer knows the task names it will receive."""
    import tasks.registry  # noqa: F401


def start_embedded_consumer(workers: int = 2) -> Consumer:
    """Start worker and scheduler threads without taking over the process's signal handlers."""
    _load_tasks()
    consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=True, check_worker_health=False)
    consumer.scheduler.start()
    for _, worker in consumer.worker_threads:
        worker.start()
    log.info("embedded Huey consumer started with %d worker threads", workers)
    return consumer


def stop_embedded_consumer(consumer: Consumer) -> None:
    consumer.stop(graceful=False)


def run_worker(workers: int) -> None:
    """The server-mode worker: blocks until SIGTERM/SIGINT."""
    _load_tasks()
    huey.create_consumer(workers=workers, worker_type="thread", periodic=True).run()
