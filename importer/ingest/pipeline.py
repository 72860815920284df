"""One import from the stored file to the catalogue, resumable from what the upload row says.

Stages: `queued` -> `reading` (encoding, delimiter, header) -> `staging` (chunks parsed and
staged; each chunk commits together with its checkpoint: byte offset, row counts, errors)
-> `merging` (one transaction: upsert, outbox event, final counts) -> `done`. A worker
that dies loses at most one uncommitted chunk or the merge transaction; the next claim
continues from the last checkpoint.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
from sqlalchemy import ColumnElement, delete, func, insert, literal, or_, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel import Session

from importer import products, webhooks
from importer.config import get_settings
from importer.db import get_engine, session_scope
from importer.ingest import backend as backends
from importer.ingest.reader import CsvLayout, FileFault, NotUtf8, as_utf8, iter_chunks, sniff
from importer.ingest.validate import ParsedChunk, parse_chunk
from importer.ingest.watchdog import Watchdog
from importer.models import EventType, Upload, UploadError, UploadStatus, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

STAGING_SHARE = 50.0  # progress (percent) when staging ends; the merge takes it to 100
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)  # after a lost database connection
MAX_ATTEMPTS = 5  # claims of one upload that never finished: a file that kills its worker stops there
DATABASE_ERRORS = (DBAPIError, psycopg2.Error, sqlite3.Error)
READER_JOIN_SECONDS = 5.0  # the reader finishes its current chunk, then sees that nobody is listening


class Stopped(Exception):
    """Cancel requested, or another worker has taken the upload over."""


def _backend():  # type: ignore[no-untyped-def]
    return backends.for_dialect(get_engine().dialect.name)


def _dbapi(connection: Connection) -> Any:
    return connection.connection.dbapi_connection


def stale_before(now: datetime) -> datetime:
    """A processing upload whose heartbeat is older than this has lost its worker."""
    return now - timedelta(seconds=get_settings().stale_import_seconds)


def is_stale(heartbeat_at: datetime | None, now: datetime) -> bool:
    """The worker that beat last at `heartbeat_at` has stopped: killed, or cut off from the database."""
    return heartbeat_at is None or heartbeat_at < stale_before(now)


def lost_its_worker(now: datetime) -> ColumnElement[bool]:
    """is_stale in SQL, for a processing upload: the condition under which another worker may act on it."""
    return (Upload.status == UploadStatus.processing.value) & or_(
        Upload.heartbeat_at.is_(None), Upload.heartbeat_at < stale_before(now))


def is_transient(exc: BaseException) -> bool:
    """A lost or refused connection, worth resuming from the checkpoint; any other database error recurs."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
    return isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError, sqlite3.OperationalError))


def _give_up_if_worn_out(session: Session, upload_id: int, now: datetime) -> bool:
    """Fail an upload whose workers died MAX_ATTEMPTS times since it was (re)queued by a person,
    rather than hand it to the next one.
    """
    return bool(session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.cancel_requested.is_(False),
               Upload.attempts - Upload.attempts_before_retry >= MAX_ATTEMPTS, lost_its_worker(now))
        .values(status=UploadStatus.failed.value, stage="failed", finished_at=now,
                error=literal(f"The import gave up after {MAX_ATTEMPTS} attempts; the last worker stopped during ")
                + Upload.stage + literal("."))
        .execution_options(synchronize_session=False)
    ).rowcount)


def claim(upload_id: int) -> int | None:
    """Take the upload if it is pending, or processing with a stale heartbeat; returns the claim token."""
    now = utcnow()
    with session_scope() as session:
        if _give_up_if_worn_out(session, upload_id, now):
            session.commit()
            log.error("upload %s: gave up after %d attempts", upload_id, MAX_ATTEMPTS)
            cleanup(upload_id)
            return None
        claimed = session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.cancel_requested.is_(False),
                   or_(Upload.status == UploadStatus.pending.value, lost_its_worker(now)))
            .values(status=UploadStatus.processing.value, attempts=Upload.attempts + 1, heartbeat_at=now,
                    started_at=func.coalesce(Upload.started_at, now), finished_at=None, error=None)
        ).rowcount
        return session.get(Upload, upload_id).attempts if claimed else None  # type: ignore[union-attr]


def _owned(upload_id: int, token: int):  # type: ignore[no-untyped-def]
    """An UPDATE that only the current claim, not cancelled, can make."""
    return update(Upload).where(Upload.id == upload_id, Upload.attempts == token, Upload.cancel_requested.is_(False))


def _save(session: Session, upload_id: int, token: int, **values: Any) -> None:
    if not session.execute(_owned(upload_id, token).values(heartbeat_at=utcnow(), **values)).rowcount:
        raise Stopped()


def _restart_staging(upload: Upload, token: int, layout: CsvLayout) -> None:
    with session_scope() as session:
        backends.create_staging(session.connection(), backends.staging_table(upload.id))  # type: ignore[arg-type]
        session.execute(delete(UploadError).where(UploadError.upload_id == upload.id))
        _save(session, upload.id, token, stage="staging", progress=0.0, encoding=layout.encoding,  # type: ignore[arg-type]
              delimiter=layout.delimiter, ignored_columns=list(layout.ignored), has_active_column=layout.has_active,
              bytes_read=layout.data_offset, processed_rows=0, staged_rows=0, failed_rows=0, total_rows=None,
              created=0, updated=0, unchanged=0)


def _resumable(upload: Upload) -> bool:
    if upload.stage not in ("staging", "merging") or not upload.bytes_read:
        return False
    with get_engine().connect() as connection:
        return backends.count_staged(connection, backends.staging_table(upload.id)) == upload.staged_rows  # type: ignore[arg-type]


def _prepare(upload: Upload, token: int, encoding: str | None = None) -> CsvLayout:
    """The layout to read with; staging restarts from the top unless its checkpoint checks out."""
    path = Path(upload.stored_path)
    if not path.is_file():
        raise FileFault("The uploaded file is no longer on the server; upload it again.")
    if encoding is None and _resumable(upload):
        return sniff(path, encoding=upload.encoding)
    with session_scope() as session:
        _save(session, upload.id, token, stage="reading")  # type: ignore[arg-type]
    layout = sniff(path, encoding=encoding)
    _restart_staging(upload, token, layout)
    upload.bytes_read, upload.processed_rows, upload.staged_rows, upload.failed_rows = layout.data_offset, 0, 0, 0
    upload.stage, upload.has_active_column = "staging", layout.has_active
    return layout


def _parsed_chunks(path: Path, start: int, layout: CsvLayout, first_record: int) -> Iterator[tuple[ParsedChunk, int]]:
    record = first_record
    verbatim_ok = _backend().STAGES_VERBATIM
    for data, end in iter_chunks(path, start, layout.delimiter):
        chunk = parse_chunk(as_utf8(data, layout.encoding), layout, record, verbatim_ok)
        record += chunk.records
        yield chunk, end


def _put(buffer: queue.Queue[tuple[str, Any]], done: threading.Event, entry: tuple[str, Any]) -> bool:
    """Wait for room unless the consumer has gone: a blocked producer would keep its thread forever."""
    while not done.is_set():
        try:
            buffer.put(entry, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Produce items in a thread, `depth` ahead: parsing overlaps with the database's work on the last chunk."""
    buffer: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    done = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(buffer, done, ("item", item)):
                    return
            _put(buffer, done, ("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            _put(buffer, done, ("error", exc))

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        done.set()
        while not buffer.empty():
            buffer.get_nowait()
        thread.join(timeout=READER_JOIN_SECONDS)


def _stage_chunk(upload: Upload, token: int, chunk: ParsedChunk, end: int, watchdog: Watchdog) -> None:
    if watchdog.stopped:
        raise Stopped()
    upload.processed_rows += chunk.records
    upload.staged_rows += len(chunk.rows)
    upload.failed_rows += chunk.failed
    with session_scope() as session:
        connection = session.connection()
        with watchdog.guard(_dbapi(connection)):
            _backend().stage(connection, backends.staging_table(upload.id), chunk)  # type: ignore[arg-type]
        if chunk.errors:
            session.execute(insert(UploadError), [
                {"upload_id": upload.id, "row_number": error.row_number, "column": error.column,
                 "value": error.value, "message": error.message} for error in chunk.errors])
        _save(session, upload.id, token, bytes_read=end, processed_rows=upload.processed_rows,  # type: ignore[arg-type]
              staged_rows=upload.staged_rows, failed_rows=upload.failed_rows,
              progress=round(STAGING_SHARE * end / max(upload.size_bytes, 1), 2))
    watchdog.touch()


def _stage(upload: Upload, token: int, layout: CsvLayout, watchdog: Watchdog) -> None:
    started = time.monotonic()
    chunks = _parsed_chunks(Path(upload.stored_path), upload.bytes_read, layout, upload.processed_rows)
    for chunk, end in prefetch(chunks):
        _stage_chunk(upload, token, chunk, end, watchdog)
    log.info("upload %s: %d rows staged, %d rejected, in %.2fs", upload.id, upload.staged_rows, upload.failed_rows,
             time.monotonic() - started)
    if upload.staged_rows == 0 and upload.failed_rows == 0:
        raise FileFault("The file has a header but no rows.")
    with session_scope() as session:
        _save(session, upload.id, token, stage="merging", progress=STAGING_SHARE,  # type: ignore[arg-type]
              total_rows=upload.processed_rows)


def _event(upload: Upload, status: str, counts: backends.MergeCounts) -> dict[str, Any]:
    return {"upload_id": upload.id, "filename": upload.filename, "status": status, "total_rows": upload.processed_rows,
            "created": counts.created, "updated": counts.updated, "unchanged": counts.unchanged,
            "failed_rows": upload.failed_rows}


def _merge(upload: Upload, token: int, watchdog: Watchdog) -> None:
    backend = _backend()
    table = backends.staging_table(upload.id)  # type: ignore[arg-type]
    status = (UploadStatus.completed_with_errors if upload.failed_rows else UploadStatus.completed).value
    started = time.monotonic()
    with session_scope() as session:
        connection = session.connection()
        backend.begin_merge(connection)
        with watchdog.guard(_dbapi(connection), heartbeat=backend.HEARTBEAT_DURING_MERGE):
            counts = backend.merge(connection, table, upload.has_active_column)
        webhooks.record_event(session, EventType.product_imported, _event(upload, status, counts))
        _save(session, upload.id, token, status=status, stage="done", progress=100.0,  # type: ignore[arg-type]
              total_rows=upload.processed_rows, created=counts.created, updated=counts.updated,
              unchanged=counts.unchanged, finished_at=utcnow())
    log.info("upload %s: merged in %.2fs: %s", upload.id, time.monotonic() - started, counts)
    products.count_cache.clear()
    cleanup(upload.id)  # type: ignore[arg-type]
    remove_stored_file(upload)


def remove_stored_file(upload: Upload) -> None:
    """Best effort: a file left behind (say, by a worker killed right after the merge) goes with the retention sweep."""
    try:
        Path(upload.stored_path).unlink(missing_ok=True)
    except OSError:
        log.warning("could not remove the stored file of upload %s", upload.id, exc_info=True)


def cleanup(upload_id: int) -> None:
    """Best effort: a leftover staging table is harmless and dropped when the upload is next touched.

    Fresh planner statistics after a large merge come from the search-index task that follows it.
    """
    cancel_marker(upload_id).unlink(missing_ok=True)
    try:
        with get_engine().begin() as connection:
            backends.drop_staging(connection, backends.staging_table(upload_id))
    except DATABASE_ERRORS:
        log.warning("could not clean up after upload %s", upload_id, exc_info=True)


def _drive(upload_id: int, token: int, watchdog: Watchdog) -> None:
    with session_scope() as session:
        upload = session.get(Upload, upload_id)
    if upload is None or upload.attempts != token:
        raise Stopped()
    if upload.stage != "merging" or not _resumable(upload):
        try:
            _stage(upload, token, _prepare(upload, token), watchdog)
        except NotUtf8:
            _stage(upload, token, _prepare(upload, token, encoding="cp1252"), watchdog)
    _merge(upload, token, watchdog)


def _finish(upload_id: int, token: int, **values: Any) -> None:
    with session_scope() as session:
        session.execute(update(Upload).where(Upload.id == upload_id, Upload.attempts == token)
                        .values(finished_at=utcnow(), **values))
    cleanup(upload_id)


def cancel_marker(upload_id: int) -> Path:
    """A file that asks the worker to stop; it works even while a SQLite merge blocks every other writer."""
    return get_settings().upload_dir / f"{int(upload_id)}.cancel"


def _stopped(upload_id: int, token: int) -> None:
    with session_scope() as session:
        upload = session.get(Upload, upload_id)
        owned = upload is not None and upload.attempts == token
        cancelled = owned and (upload.cancel_requested or cancel_marker(upload_id).exists())  # type: ignore[union-attr]
    if cancelled:
        _finish(upload_id, token, status=UploadStatus.cancelled.value, stage="cancelled", cancel_requested=True)
        log.info("upload %s cancelled; the catalogue is unchanged", upload_id)


def _reason(exc: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's statement and parameters (which may hold a whole chunk)."""
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def _run_claimed(upload_id: int, token: int, watchdog: Watchdog) -> None:
    for delay in (*RETRY_DELAYS, None):
        try:
            _drive(upload_id, token, watchdog)
            return
        except Stopped:
            return _stopped(upload_id, token)
        except FileFault as exc:
            return _finish(upload_id, token, status=UploadStatus.failed.value, stage="failed", error=str(exc))
        except DATABASE_ERRORS as exc:
            if watchdog.stopped:
                return _stopped(upload_id, token)
            if not is_transient(exc):
                log.exception("upload %s: the database refused the import", upload_id)
                return _finish(upload_id, token, status=UploadStatus.failed.value, stage="failed",
                               error=f"The database refused the import: {_reason(exc)}")
            if delay is None:
                log.error("upload %s: database unreachable; leaving it for the reaper (%s)", upload_id, exc)
                return
            log.warning("upload %s: database error, resuming from the checkpoint in %.1fs: %s", upload_id, delay, exc)
            time.sleep(delay)


def run(upload_id: int) -> None:
    """Import an upload, or resume it; a no-op when another worker owns it or it has finished."""
    token = claim(upload_id)
    if token is None:
        return
    backend = _backend()
    cancel_marker(upload_id).unlink(missing_ok=True)
    with Watchdog(upload_id, token, backend.interrupt, cancel_marker(upload_id)) as watchdog:
        try:
            _run_claimed(upload_id, token, watchdog)
        except Exception as exc:
            log.exception("upload %s failed unexpectedly", upload_id)
            _finish(upload_id, token, status=UploadStatus.failed.value, stage="failed",
                    error=f"The import stopped on an unexpected error: {exc}")
