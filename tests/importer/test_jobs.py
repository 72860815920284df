"""The upload lifecycle: queue, cancel, re-queue, concurrent imports, a lost database connection.

These run real imports on the real queue (the `worker` fixture's consumer threads).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update

from importer import jobs
from importer.config import get_settings
from importer.db import get_engine, session_scope
from importer.errors import InvalidInput
from importer.models import Product, ProductCreate, Upload, utcnow
from importer.products import create_product
from tasks.imports import enqueue_import, resume_imports
from tests.importer.ingest_support import (
    DATA, catalogue, csv_bytes, expected_from_csv, fetch, generated_file, run_bytes, store, wait_for,
)

FINISHED = {"completed", "completed_with_errors", "failed", "cancelled"}


def _seed_one() -> dict[str, tuple[str, str, str, bool]]:
    with session_scope() as session:
        create_product(session, ProductCreate(sku="KEEP-1", name="Kept", description="as is"))
    return catalogue()


def _finished(upload_id: int) -> Upload | None:
    upload = fetch(upload_id)
    return upload if upload.status in FINISHED else None


def _queue(path_bytes: bytes, filename: str = "products.csv") -> int:
    upload = store(path_bytes, filename)
    enqueue_import(upload.id)  # type: ignore[arg-type]
    return upload.id  # type: ignore[return-value]


def test_queued_import_completes_with_progress(worker: None) -> None:
    upload_id = _queue((DATA / "products_1000.csv").read_bytes())
    upload = wait_for(lambda: _finished(upload_id))
    assert (upload.status, upload.progress, upload.created) == ("completed", 100.0, 999)
    assert upload.started_at is not None and upload.finished_at >= upload.started_at  # type: ignore[operator]
    assert catalogue() == expected_from_csv(DATA / "products_1000.csv")


def test_cancel_before_a_worker_picks_it_up() -> None:
    upload = store((DATA / "products_100.csv").read_bytes())
    with session_scope() as session:
        cancelled = jobs.request_cancel(session, upload.id)  # type: ignore[arg-type]
    assert (cancelled.status, cancelled.stage) == ("cancelled", "cancelled")
    jobs.run_import(upload.id)  # type: ignore[arg-type]
    assert fetch(upload.id).status == "cancelled"  # type: ignore[arg-type]
    assert catalogue() == {}


@pytest.mark.parametrize("stage", ["staging", "merging"])
def test_cancel_a_running_import_leaves_the_catalogue_as_it_was(worker: None, stage: str) -> None:
    before = _seed_one()
    upload_id = _queue(generated_file(150_000).read_bytes())
    wait_for(lambda: fetch(upload_id).stage == stage, timeout=60, interval=0.005)
    with session_scope() as session:
        jobs.request_cancel(session, upload_id)
    upload = wait_for(lambda: _finished(upload_id), timeout=3, interval=0.05)
    assert (upload.status, upload.stage) == ("cancelled", "cancelled")
    assert catalogue() == before
    with get_engine().connect() as connection:
        tables = connection.execute(text("SELECT count(*) FROM products")).scalar_one()
    assert tables == 1


def test_cancel_or_requeue_a_completed_upload_is_refused() -> None:
    upload = run_bytes((DATA / "products_100.csv").read_bytes())
    with session_scope() as session:
        with pytest.raises(InvalidInput, match="already finished"):
            jobs.request_cancel(session, upload.id)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="only a failed, cancelled or interrupted"):
            jobs.requeue(session, upload.id)  # type: ignore[arg-type]


def test_requeue_a_failed_upload_starts_it_over(worker: None) -> None:
    upload = run_bytes(b"sku,name\r\n", "header.csv")
    assert upload.status == "failed"
    with open(upload.stored_path, "wb") as handle:
        handle.write(csv_bytes([["sku", "name"], ["A-1", "Alpha"]]))
    with session_scope() as session:
        again = jobs.requeue(session, upload.id)  # type: ignore[arg-type]
    assert (again.status, again.stage, again.error, again.progress) == ("pending", "queued", None, 0.0)
    enqueue_import(upload.id)  # type: ignore[arg-type]
    assert wait_for(lambda: _finished(upload.id)).status == "completed"  # type: ignore[arg-type, union-attr]
    assert set(catalogue()) == {"a-1"}


def test_interrupted_upload_is_found_by_the_reaper_and_resumed() -> None:
    from tasks import huey

    upload = store((DATA / "products_1000.csv").read_bytes())
    with session_scope() as session:
        session.execute(update(Upload).where(Upload.id == upload.id).values(
            status="processing", attempts=1, heartbeat_at=utcnow() - timedelta(hours=1)))
        assert jobs.is_interrupted(jobs.get_upload(session, upload.id))  # type: ignore[arg-type]
    assert resume_imports(at_startup=False) == [upload.id]
    assert [task.args for task in huey.pending()] == [(upload.id,)]
    jobs.run_import(upload.id)  # type: ignore[arg-type]
    done = fetch(upload.id)  # type: ignore[arg-type]
    assert (done.status, done.created, done.attempts) == ("completed", 999, 2)


def test_a_live_import_is_not_taken_over() -> None:
    upload = store((DATA / "products_100.csv").read_bytes())
    with session_scope() as session:
        session.execute(update(Upload).where(Upload.id == upload.id).values(
            status="processing", attempts=1, heartbeat_at=utcnow()))
    jobs.run_import(upload.id)  # type: ignore[arg-type]
    assert (fetch(upload.id).attempts, catalogue()) == (1, {})  # type: ignore[arg-type]
    assert resume_imports(at_startup=False) == []


def test_two_uploads_at_once_merge_one_after_the_other(worker: None) -> None:
    first = csv_bytes([["sku", "name", "description"]] + [[f"S-{i}", f"first {i}", "a"] for i in range(3000)])
    second = csv_bytes([["sku", "name", "description"]] + [[f"s-{i}", f"second {i}", "b"] for i in range(1500, 4500)])
    ids = [_queue(first, "first.csv"), _queue(second, "second.csv")]
    uploads = [wait_for(lambda upload_id=upload_id: _finished(upload_id)) for upload_id in ids]
    assert [upload.status for upload in uploads] == ["completed", "completed"]
    order = sorted(uploads, key=lambda upload: upload.finished_at)  # type: ignore[arg-type, return-value]
    expected: dict[str, tuple[str, str, str, bool]] = {}
    for upload in order:
        for i in range(3000) if upload.filename == "first.csv" else range(1500, 4500):
            sku = f"S-{i}" if upload.filename == "first.csv" else f"s-{i}"
            expected[sku.casefold()] = (sku, f"{upload.filename[:-4].replace('.csv', '')} {i}",
                                        "a" if upload.filename == "first.csv" else "b", True)
    assert catalogue() == expected
    assert sum(upload.created for upload in uploads) == 4500
    assert order[1].updated == 1500


def _terminate_other_backends() -> int:
    with get_engine().connect() as connection:
        return len(connection.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'active'")).all())


@pytest.mark.skipif(get_engine().dialect.name != "postgresql", reason="PostgreSQL connections only")
def test_lost_database_connections_mid_import_resume_from_the_checkpoint(
        worker: None, caplog: pytest.LogCaptureFixture) -> None:
    """What a PostgreSQL restart does to a client: the import's backends are terminated, in staging and in the merge."""
    before = _seed_one()
    path = generated_file(30_000)
    caplog.set_level(logging.WARNING, logger="importer.ingest.pipeline")
    upload_id = _queue(path.read_bytes())
    for stage in ("staging", "merging"):
        wait_for(lambda stage=stage: fetch(upload_id).stage == stage and _terminate_other_backends(),
                 timeout=60, interval=0.005)
    upload = wait_for(lambda: _finished(upload_id), timeout=90, interval=0.1)
    assert upload.status == "completed", upload.error
    expected = {**before, **expected_from_csv(path)}
    assert catalogue() == expected
    assert (upload.created, upload.updated) == (len(expected) - 1, 0)
    assert "resuming from the checkpoint" in caplog.text


def test_reaper_requeues_a_pending_upload_only_when_its_message_is_lost() -> None:
    from tasks import huey

    upload = store((DATA / "products_100.csv").read_bytes())
    with session_scope() as session:
        session.execute(update(Upload).where(Upload.id == upload.id).values(created_at=utcnow() - timedelta(hours=1)))
    enqueue_import(upload.id)  # type: ignore[arg-type]
    assert resume_imports(at_startup=False) == []
    huey.flush()
    assert resume_imports(at_startup=False) == [upload.id]
    assert [task.args for task in huey.pending()] == [(upload.id,)]


def test_a_completed_import_removes_its_stored_file() -> None:
    upload = run_bytes(csv_bytes([["sku", "name"], ["A-1", "Alpha"]]))
    assert upload.status == "completed"
    assert not Path(upload.stored_path).exists()


def test_a_failed_uploads_file_is_kept_for_retry_until_the_retention_period_ends() -> None:
    upload = run_bytes(b"sku,name\r\n", "header.csv")
    assert upload.status == "failed" and Path(upload.stored_path).exists()
    with session_scope() as session:
        assert jobs.remove_expired_files(session) == []
        session.execute(update(Upload).where(Upload.id == upload.id).values(
            finished_at=utcnow() - timedelta(days=get_settings().upload_retention_days, minutes=1)))
        session.commit()
        assert jobs.remove_expired_files(session) == [upload.id]
    assert not Path(upload.stored_path).exists()
    with session_scope() as session:
        jobs.requeue(session, upload.id)  # type: ignore[arg-type]
    jobs.run_import(upload.id)  # type: ignore[arg-type]
    again = fetch(upload.id)  # type: ignore[arg-type]
    assert (again.status, again.error) == ("failed", "The uploaded file is no longer on the server; upload it again.")
