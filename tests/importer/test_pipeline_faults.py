"""Faults inside the import pipeline: a consumer that stops early, database errors that will not
go away, workers that keep dying, and a re-queue racing a worker that finishes after all."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.exc import DBAPIError

from importer import jobs
from importer.db import get_engine, session_scope
from importer.errors import InvalidInput
from importer.ingest import pipeline
from importer.models import Upload, utcnow
from tasks.imports import resume_imports
from tests.importer.ingest_support import DATA, catalogue, fetch, run_bytes, store

BOUND = 10.0  # seconds: far above what a correct run needs; only a hang reaches it


def _readers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "import-reader"]


def test_closing_prefetch_while_the_reader_waits_for_room_ends_the_reader() -> None:
    """The consumer raised on the first item (cancel, lost claim); the reader has already filled the queue."""
    exhausted = threading.Event()

    def items() -> Iterator[int]:
        yield from (1, 2, 3)
        exhausted.set()

    chunks = pipeline.prefetch(items(), depth=2)
    assert next(chunks) == 1
    assert exhausted.wait(BOUND)
    (reader,) = _readers()
    closer = threading.Thread(target=chunks.close, daemon=True)
    closer.start()
    closer.join(BOUND)
    assert not closer.is_alive(), "closing the generator hung on the reader thread"
    reader.join(BOUND)
    assert not reader.is_alive()


def test_prefetch_hands_over_every_item_and_the_reader_error() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("broken chunk")

    assert list(pipeline.prefetch(iter(range(7)), depth=2)) == list(range(7))
    chunks = pipeline.prefetch(failing())
    assert next(chunks) == 1
    with pytest.raises(ValueError, match="broken chunk"):
        next(chunks)


def _integrity_error() -> DBAPIError:
    upload = store(b"sku,name\r\nA,a\r\n")
    try:
        with get_engine().begin() as connection:
            connection.execute(insert(Upload).values(id=upload.id, filename="x", stored_path="x", size_bytes=1))
    except DBAPIError as exc:
        return exc
    raise AssertionError("a duplicate primary key was accepted")


def test_only_a_lost_connection_counts_as_transient() -> None:
    refused = _integrity_error()
    assert not pipeline.is_transient(refused)
    refused.connection_invalidated = True
    assert pipeline.is_transient(refused)


@pytest.fixture
def products_refused() -> Iterator[str]:
    """A trigger that rejects every product row: a database error that no retry will cure."""
    message = "no products today"
    with get_engine().begin() as connection:
        if get_engine().dialect.name == "postgresql":
            connection.execute(text(f"CREATE FUNCTION refuse_products() RETURNS trigger AS $$ BEGIN "
                                    f"RAISE EXCEPTION '{message}'; END $$ LANGUAGE plpgsql"))
            connection.execute(text("CREATE TRIGGER refuse_products BEFORE INSERT ON products "
                                    "FOR EACH ROW EXECUTE FUNCTION refuse_products()"))
        else:
            connection.execute(text(f"CREATE TRIGGER refuse_products BEFORE INSERT ON products "
                                    f"BEGIN SELECT RAISE(ABORT, '{message}'); END"))
    try:
        yield message
    finally:
        with get_engine().begin() as connection:
            connection.execute(text("DROP TRIGGER refuse_products" + (
                " ON products" if get_engine().dialect.name == "postgresql" else "")))
            if get_engine().dialect.name == "postgresql":
                connection.execute(text("DROP FUNCTION refuse_products()"))


def test_a_permanent_database_error_fails_the_upload_at_once(products_refused: str) -> None:
    upload = run_bytes((DATA / "products_100.csv").read_bytes())
    assert (upload.status, upload.stage, upload.attempts) == ("failed", "failed", 1)
    assert upload.error == f"The database refused the import: {products_refused}"
    assert catalogue() == {}


def _abandoned(attempts: int, stage: str = "merging") -> int:
    upload = store((DATA / "products_100.csv").read_bytes())
    with session_scope() as session:
        session.execute(update(Upload).where(Upload.id == upload.id).values(
            status="processing", stage=stage, attempts=attempts, heartbeat_at=utcnow() - timedelta(hours=1)))
    return upload.id  # type: ignore[return-value]


def test_an_upload_whose_workers_keep_dying_fails_after_max_attempts() -> None:
    upload_id = _abandoned(pipeline.MAX_ATTEMPTS)
    assert resume_imports(at_startup=False) == [upload_id]
    jobs.run_import(upload_id)
    upload = fetch(upload_id)
    assert (upload.status, upload.stage, upload.attempts) == ("failed", "failed", pipeline.MAX_ATTEMPTS)
    assert upload.error == (f"The import gave up after {pipeline.MAX_ATTEMPTS} attempts; "
                            "the last worker stopped during merging.")
    assert catalogue() == {}
    assert resume_imports(at_startup=False) == []


def test_a_retry_by_hand_gives_a_fresh_allowance_of_attempts() -> None:
    upload_id = _abandoned(pipeline.MAX_ATTEMPTS)
    jobs.run_import(upload_id)
    assert fetch(upload_id).status == "failed"
    with session_scope() as session:
        jobs.requeue(session, upload_id)
    with session_scope() as session:  # the retry's worker dies once too
        session.execute(update(Upload).where(Upload.id == upload_id).values(
            status="processing", stage="staging", attempts=Upload.attempts + 1,
            heartbeat_at=utcnow() - timedelta(hours=1)))
    jobs.run_import(upload_id)
    upload = fetch(upload_id)
    assert (upload.status, upload.attempts, upload.created) == ("completed", pipeline.MAX_ATTEMPTS + 2, 100)


def test_the_last_allowed_attempt_still_runs() -> None:
    upload_id = _abandoned(pipeline.MAX_ATTEMPTS - 1, stage="staging")
    jobs.run_import(upload_id)
    upload = fetch(upload_id)
    assert (upload.status, upload.attempts, upload.created) == ("completed", pipeline.MAX_ATTEMPTS, 100)


def test_requeue_does_not_undo_a_merge_that_committed_after_it_looked() -> None:
    """The upload looked interrupted (a long SQLite merge stops the heartbeat), then its merge committed."""
    upload_id = _abandoned(1)
    with session_scope() as session:
        looked = jobs.get_upload(session, upload_id)  # held: the session keeps what it read
        assert jobs.is_interrupted(looked)
        with session_scope() as worker:
            worker.execute(update(Upload).where(Upload.id == upload_id).values(status="completed", stage="done"))
        with pytest.raises(InvalidInput, match=f"Upload {upload_id} is completed"):
            jobs.requeue(session, upload_id)
    assert (fetch(upload_id).status, fetch(upload_id).stage) == ("completed", "done")


def test_a_cancel_whose_worker_died_is_finished_by_the_reaper_and_a_live_one_is_not() -> None:
    dead, live = _abandoned(1), _abandoned(1)
    with session_scope() as session:
        session.execute(update(Upload).where(Upload.id.in_([dead, live])).values(cancel_requested=True))
        session.execute(update(Upload).where(Upload.id == live).values(heartbeat_at=utcnow()))
    with session_scope() as session:
        assert jobs.cancel_abandoned(session) == [dead]
    assert (fetch(dead).status, fetch(live).status) == ("cancelled", "processing")
