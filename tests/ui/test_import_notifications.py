"""Import notifications reach their user on any page, from one shared poller per process."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from nicegui.testing import User
from sqlalchemy import event

from importer import auth
from importer.db import get_engine, session_scope
from importer.models import Upload, UploadStatus, utcnow

QUEUE_THREADS = re.compile(r"^(Worker-\d+|Scheduler)$")


def _add_upload(user_id: int, **fields: object) -> int:
    with session_scope() as session:
        upload = Upload(filename=fields.pop("filename", "catalogue.csv"), stored_path="/nowhere/catalogue.csv",
                        created_by_id=user_id, **fields)
        session.add(upload)
        session.flush()
        assert upload.id is not None
        return upload.id


def _finish(upload_id: int, **fields: object) -> None:
    with session_scope() as session:
        upload = session.get(Upload, upload_id)
        assert upload is not None
        for name, value in fields.items():
            setattr(upload, name, value)
        upload.finished_at = utcnow()


async def _wait_for_notification(user: User, text: str) -> None:
    for _ in range(50):
        if user.notify.contains(text):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no notification containing {text!r}; got {user.notify.messages}")


@pytest.mark.ui
async def test_an_import_finishing_while_the_user_is_on_another_page_is_announced(
        logged_in_user: User, admin: dict) -> None:  # type: ignore[type-arg]
    from ui.import_progress import monitor

    upload_id = _add_upload(admin["id"], status=UploadStatus.processing.value, started_at=utcnow(), progress=40)
    await monitor.poll()
    assert [progress.upload_id for progress in monitor.running()] == [upload_id]
    _finish(upload_id, status=UploadStatus.completed_with_errors.value, total_rows=1000, created=990, updated=8,
            failed_rows=1, progress=100)

    await _wait_for_notification(logged_in_user, "Import of catalogue.csv finished: "
                                                 "998 products: 990 created, 8 updated, 1 duplicate merged / 1 rejected")
    assert monitor.running() == []


@pytest.mark.ui
async def test_an_import_that_starts_and_fails_between_two_polls_is_announced_once(
        logged_in_user: User, admin: dict) -> None:  # type: ignore[type-arg]
    from ui.import_progress import monitor

    await monitor.poll()
    _add_upload(admin["id"], filename="broken.csv", status=UploadStatus.failed.value, finished_at=utcnow(),
                error="The file has no 'sku' column.")

    await _wait_for_notification(logged_in_user, "Import of broken.csv failed: The file has no 'sku' column.")
    await monitor.poll()
    assert sum("broken.csv" in message for message in logged_in_user.notify.messages) == 1


@pytest.mark.ui
async def test_other_users_imports_are_not_announced(logged_in_user: User, admin: dict) -> None:  # type: ignore[type-arg]
    from ui.import_progress import monitor

    with session_scope() as session:
        someone_else = auth.create_user(session, "colleague", "another-long-password")
    await monitor.poll()
    _add_upload(someone_else.id or 0, filename="theirs.csv", status=UploadStatus.completed.value, total_rows=1)
    _add_upload(admin["id"], filename="mine.csv", status=UploadStatus.completed.value, total_rows=1, created=1)

    await _wait_for_notification(logged_in_user, "Import of mine.csv finished: 1 product: 1 created")
    assert not logged_in_user.notify.contains("theirs.csv")


@contextmanager
def _upload_queries() -> Iterator[list[str]]:
    """Statements reading uploads, except those of the queue's own threads (its reaper reads them too)."""
    statements: list[str] = []

    def record(_conn, _cursor, statement: str, *_args: object) -> None:  # type: ignore[no-untyped-def]
        if "FROM uploads" in statement and not QUEUE_THREADS.match(threading.current_thread().name):
            statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.ui
async def test_many_open_pages_share_one_query_per_poll(logged_in_user: User, admin: dict,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[type-arg]
    from ui.import_progress import monitor

    for _ in range(3):
        await logged_in_user.open("/products")
    assert len(monitor.finished.callbacks) >= 4
    _add_upload(admin["id"], status=UploadStatus.processing.value, started_at=utcnow())
    await monitor.poll()
    reads: list[int] = []
    read = monitor._read
    monkeypatch.setattr(monitor, "_read", lambda *args: reads.append(1) or read(*args))

    with _upload_queries() as statements:
        await monitor.poll()
    assert len(reads) >= 1  # the app's own timer may poll as well while the test does
    assert len(statements) == len(reads)


async def test_the_poller_reports_running_imports_and_each_finish_once_on_both_backends(
        admin: dict) -> None:  # type: ignore[type-arg]
    """No browser here: the poller's own queries, on SQLite and on PostgreSQL."""
    from ui.import_progress import ImportMonitor

    monitor = ImportMonitor()
    changes: list[list[int]] = []
    finished: list[int] = []
    monitor.changed.subscribe(lambda progress: changes.append(sorted(item.upload_id for item in progress)))
    monitor.finished.subscribe(lambda progress: finished.append(progress.upload_id))
    old = _add_upload(admin["id"], status=UploadStatus.completed.value, finished_at=utcnow())
    await monitor.poll()
    assert (changes, finished) == ([], [])

    running = _add_upload(admin["id"], status=UploadStatus.processing.value, started_at=utcnow(), progress=20)
    quick = _add_upload(admin["id"], status=UploadStatus.failed.value, finished_at=utcnow(), error="No 'sku' column.")
    await monitor.poll()
    assert [item.upload_id for item in monitor.running()] == [running]
    assert (changes[-1], finished) == ([running, quick], [quick])

    _finish(running, status=UploadStatus.completed.value, progress=100)
    await monitor.poll()
    await monitor.poll()
    assert finished == [quick, running]
    assert monitor.running() == [] and old not in finished
