"""Import tasks: the queue carries an upload id; importer.jobs does the work and keeps the state.

Huey has no acknowledgements, so a task lost with its worker is found again from the
database: by the start-up sweep of every worker and by a reaper every minute.
"""

from __future__ import annotations

import logging

from huey import crontab

from importer import jobs
from importer.db import session_scope
from tasks import huey
from tasks.search import index_search

log = logging.getLogger(__name__)


@huey.task()
def import_upload(upload_id: int) -> None:
    jobs.run_import(upload_id)
    index_search()


def enqueue_import(upload_id: int, delay: float = 0.0) -> None:
    """Queue an upload's import (after the upload row has committed)."""
    if delay > 0:
        import_upload.schedule((upload_id,), delay=delay)
    else:
        import_upload(upload_id)


def _queued_upload_ids() -> set[int]:
    return {task.args[0] for task in huey.pending() if task.name == import_upload.task_class.__name__}


def resume_imports(*, at_startup: bool) -> list[int]:
    """Queue every upload that lost its worker or its queue message (a duplicate would be a no-op)."""
    with session_scope() as session:
        jobs.cancel_abandoned(session)
        due = jobs.uploads_to_resume(session, at_startup=at_startup)
    queued = _queued_upload_ids()
    # A queued message runs at once and finds a fresh heartbeat: a delayed resume is still needed.
    due = [(upload_id, delay) for upload_id, delay in due if delay > 0 or upload_id not in queued]
    for upload_id, delay in due:
        log.info("re-queueing upload %s in %.1fs", upload_id, delay)
        enqueue_import(upload_id, delay)
    return [upload_id for upload_id, _ in due]


@huey.periodic_task(crontab(minute="*"))
def reap_imports() -> None:
    resume_imports(at_startup=False)
    with session_scope() as session:
        jobs.remove_expired_files(session)


@huey.on_startup("imports-resume")
def _resume_on_start() -> None:
    try:
        resume_imports(at_startup=True)
    except Exception:  # noqa: BLE001 - the periodic reaper tries again in a minute
        log.exception("could not look for interrupted imports at start-up")
