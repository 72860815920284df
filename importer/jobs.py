"""The life of an upload: stored, queued, imported (see importer.ingest.pipeline), cancelled,
re-queued, reported on. The queue only ever carries an upload's id; everything a worker needs
to start or resume is in the uploads row and the stored file under DATA_DIR/uploads.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import uuid
from collections.abc import AsyncIterable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import delete, func, or_, select, update
from sqlmodel import Session

from importer.config import get_settings
from importer.db import session_scope
from importer.errors import ImporterError, InvalidInput, NotFound
from importer.export import spreadsheet_safe
from importer.ingest import pipeline
from importer.models import FINISHED_STATUSES, Upload, UploadError, UploadStatus, utcnow

MAX_PAGE_SIZE = 200
ERROR_REPORT_COLUMNS = ("row", "column", "value", "message")
ERROR_BATCH = 5000
MULTIPART_ALLOWANCE = 64 * 1024
SAFE_EXTENSION = re.compile(r"\.[a-z0-9]{1,10}")


class UploadTooLarge(ImporterError):
    """The file is over MAX_UPLOAD_MB; the API answers 413."""


@dataclass(frozen=True)
class StoredFile:
    path: Path
    size_bytes: int


def _too_large() -> UploadTooLarge:
    return UploadTooLarge(f"The file is over the {get_settings().max_upload_mb:,} MB upload limit.")


def check_declared_length(content_length: str | bytes | None) -> None:
    """Refuse a request whose Content-Length is over the limit plus room for the multipart framing,
    before any of it is read; the exact check on the file's own bytes happens while it is stored."""
    declared = int(content_length) if content_length and content_length.isdigit() else 0
    if declared > get_settings().max_upload_bytes + MULTIPART_ALLOWANCE:
        raise _too_large()


def _new_upload_path(filename: str) -> Path:
    """Only a plain extension is kept: the client's filename may hold anything, a NUL included."""
    directory = get_settings().upload_dir
    directory.mkdir(parents=True, exist_ok=True)
    extension = Path(filename).suffix.lower()
    suffix = extension if SAFE_EXTENSION.fullmatch(extension) else ".csv"
    return directory / f"{uuid.uuid4().hex}{suffix}"


class _Writer:
    """Appends to a new file under DATA_DIR/uploads and removes it if storing does not finish."""

    def __init__(self, filename: str) -> None:
        self.path = _new_upload_path(filename)
        self.size = 0
        self.limit = get_settings().max_upload_bytes
        self.handle: BinaryIO = self.path.open("wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise _too_large()
        self.handle.write(data)

    def close(self, ok: bool) -> StoredFile:
        self.handle.close()
        if not ok:
            self.path.unlink(missing_ok=True)
        return StoredFile(self.path, self.size)


def store_upload(chunks: Iterable[bytes], filename: str) -> StoredFile:
    """Write the chunks to DATA_DIR/uploads as they come; over MAX_UPLOAD_MB raises UploadTooLarge."""
    writer = _Writer(filename)
    try:
        for chunk in chunks:
            writer.write(chunk)
    except BaseException:
        writer.close(ok=False)
        raise
    return writer.close(ok=True)


async def astore_upload(chunks: AsyncIterable[bytes], filename: str) -> StoredFile:
    """store_upload for an async stream (an HTTP request body, a NiceGUI upload)."""
    writer = _Writer(filename)
    try:
        async for chunk in chunks:
            writer.write(chunk)
    except BaseException:
        writer.close(ok=False)
        raise
    return writer.close(ok=True)


def create_upload(session: Session, *, filename: str, stored_path: Path, size_bytes: int,
                  user_id: int | None) -> Upload:
    """A pending upload; the caller enqueues it (tasks.imports.enqueue_import) once this commits."""
    upload = Upload(filename=Path(filename).name[:255] or "upload.csv", stored_path=str(stored_path),
                    size_bytes=size_bytes, created_by_id=user_id)
    session.add(upload)
    session.flush()
    return upload


def import_local_file(session: Session, source: Path, *, user_id: int | None) -> Upload:
    """Desktop mode: copy the file under DATA_DIR so the import stays resumable if the original moves."""
    source = Path(source)
    if not source.is_file():
        raise InvalidInput(f"{source} is not a file.")
    if source.stat().st_size > get_settings().max_upload_bytes:
        raise _too_large()
    target = _new_upload_path(source.name)
    shutil.copyfile(source, target)
    return create_upload(session, filename=source.name, stored_path=target, size_bytes=target.stat().st_size,
                         user_id=user_id)


def get_upload(session: Session, upload_id: int) -> Upload:
    upload = session.get(Upload, upload_id)
    if upload is None:
        raise NotFound(f"Upload {upload_id} not found.")
    return upload


def list_uploads(session: Session, *, page: int = 1, page_size: int = 20) -> tuple[int, list[Upload]]:
    """(total count, one page of uploads, newest first)."""
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page must be 1 or more and page_size between 1 and {MAX_PAGE_SIZE}.")
    count = session.execute(select(func.count()).select_from(Upload)).scalar_one()
    statement = select(Upload).order_by(Upload.created_at.desc(), Upload.id.desc())
    uploads = list(session.execute(statement.offset((page - 1) * page_size).limit(page_size)).scalars())
    return count, uploads


def is_interrupted(upload: Upload, now: datetime | None = None) -> bool:
    """Processing, but its worker has stopped beating: killed, or cut off from the database."""
    return upload.status == UploadStatus.processing.value and pipeline.is_stale(upload.heartbeat_at, now or utcnow())


def request_cancel(session: Session, upload_id: int) -> Upload:
    """Cancel at once when no worker holds the upload; otherwise ask its worker, which stops within a second."""
    upload = get_upload(session, upload_id)
    if upload.status in {status.value for status in FINISHED_STATUSES}:
        raise InvalidInput(f"Upload {upload_id} has already finished ({upload.status}); there is nothing to cancel.")
    if upload.status == UploadStatus.processing.value:
        pipeline.cancel_marker(upload_id).touch()
    now = utcnow()
    idle = or_(Upload.status == UploadStatus.pending.value, pipeline.lost_its_worker(now))
    cancelled = session.execute(update(Upload).where(Upload.id == upload_id, idle).values(
        status=UploadStatus.cancelled.value, stage="cancelled", cancel_requested=True, finished_at=now)).rowcount
    if not cancelled:
        session.execute(update(Upload).where(Upload.id == upload_id, Upload.status == UploadStatus.processing.value)
                        .values(cancel_requested=True))
    session.commit()
    if cancelled:
        pipeline.cleanup(upload_id)
    session.refresh(upload)
    return upload


def requeue(session: Session, upload_id: int) -> Upload:
    """Make a failed, cancelled or interrupted upload pending again; the caller enqueues it.

    A failed or cancelled import starts over from the file; an interrupted one keeps its checkpoint.
    Each case is one conditional UPDATE: a worker that finishes in the meantime wins, and the file
    is not imported a second time.
    """
    upload = get_upload(session, upload_id)
    this_one = update(Upload).where(Upload.id == upload_id).execution_options(synchronize_session=False)
    again = {"status": UploadStatus.pending.value, "cancel_requested": False, "error": None, "finished_at": None,
             "attempts_before_retry": Upload.attempts}  # a fresh allowance; attempts itself keeps counting
    if session.execute(this_one.where(pipeline.lost_its_worker(utcnow())).values(again)).rowcount:
        session.commit()
    elif session.execute(this_one.where(Upload.status.in_([UploadStatus.failed.value, UploadStatus.cancelled.value]))
                         .values({**again, **_FRESH})).rowcount:
        session.execute(delete(UploadError).where(UploadError.upload_id == upload_id))
        session.commit()
    else:
        session.rollback()
        session.refresh(upload)
        raise InvalidInput(f"Upload {upload_id} is {upload.status}; only a failed, cancelled or interrupted "
                           "upload can be processed again.")
    session.refresh(upload)
    return upload


_FRESH = {"status": UploadStatus.pending.value, "stage": "queued", "progress": 0.0, "total_rows": None,
          "processed_rows": 0, "created": 0, "updated": 0, "unchanged": 0, "failed_rows": 0, "bytes_read": 0,
          "staged_rows": 0, "started_at": None}


def first_errors(session: Session, upload_id: int, limit: int) -> list[UploadError]:
    statement = (select(UploadError).where(UploadError.upload_id == upload_id)
                 .order_by(UploadError.row_number, UploadError.id).limit(limit))
    return list(session.execute(statement).scalars())


def _error_rows(upload_id: int) -> Iterator[list[UploadError]]:
    last = (0, 0)
    while True:
        with session_scope() as session:
            statement = (select(UploadError).where(UploadError.upload_id == upload_id)
                         .where((UploadError.row_number > last[0])
                                | ((UploadError.row_number == last[0]) & (UploadError.id > last[1])))
                         .order_by(UploadError.row_number, UploadError.id).limit(ERROR_BATCH))
            batch = list(session.execute(statement).scalars())
        if not batch:
            return
        yield batch
        last = (batch[-1].row_number, batch[-1].id)  # type: ignore[assignment]


def iter_error_report(upload_id: int) -> Iterator[str]:
    """The error report as CSV text chunks (row, column, value, message); every cell spreadsheet-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(ERROR_REPORT_COLUMNS)
    for batch in _error_rows(upload_id):
        writer.writerows([str(error.row_number), spreadsheet_safe(error.column), spreadsheet_safe(error.value),
                          spreadsheet_safe(error.message)] for error in batch)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def uploads_to_resume(session: Session, *, at_startup: bool) -> list[tuple[int, float]]:
    """(upload id, delay in seconds) for each upload a worker should pick up.

    Interrupted uploads now; pending ones whose queue message may be lost (older than the stale
    limit, or any at start-up). At start-up, a processing upload whose heartbeat is still fresh
    is scheduled for the moment it turns stale: its worker was most likely this process.
    """
    now = utcnow()
    stale = get_settings().stale_import_seconds
    active = session.execute(select(Upload).where(
        Upload.status.in_([UploadStatus.pending.value, UploadStatus.processing.value]),
        Upload.cancel_requested.is_(False))).scalars()
    due: list[tuple[int, float]] = []
    for upload in active:
        if upload.status == UploadStatus.pending.value:
            if at_startup or upload.created_at < pipeline.stale_before(now):
                due.append((upload.id, 0.0))  # type: ignore[arg-type]
        elif is_interrupted(upload, now):
            due.append((upload.id, 0.0))  # type: ignore[arg-type]
        elif at_startup:
            age = (now - upload.heartbeat_at).total_seconds()  # type: ignore[operator]
            due.append((upload.id, max(0.0, stale - age) + 0.5))  # type: ignore[arg-type]
    return due


def remove_expired_files(session: Session) -> list[int]:
    """Remove the stored files of finished uploads older than the retention period; returns their ids.

    Starts from the files still in the upload directory, so the work stays with what is kept,
    not with the whole upload history. Files no upload names yet (one still streaming) are left alone.
    """
    kept = [str(path) for path in get_settings().upload_dir.glob("*") if path.is_file()]
    if not kept:
        return []
    before = utcnow() - timedelta(days=get_settings().upload_retention_days)
    expired = list(session.execute(select(Upload).where(
        Upload.stored_path.in_(kept), Upload.status.in_([status.value for status in FINISHED_STATUSES]),
        Upload.finished_at < before)).scalars())
    for upload in expired:
        pipeline.remove_stored_file(upload)
    return [upload.id for upload in expired]  # type: ignore[misc]


def cancel_abandoned(session: Session) -> list[int]:
    """Finish cancels whose worker died before it could act on them."""
    now = utcnow()
    abandoned = list(session.execute(
        update(Upload).where(Upload.cancel_requested.is_(True), pipeline.lost_its_worker(now))
        .values(status=UploadStatus.cancelled.value, stage="cancelled", finished_at=now)
        .returning(Upload.id).execution_options(synchronize_session=False)).scalars())
    session.commit()
    for upload_id in abandoned:
        pipeline.cleanup(upload_id)
    return abandoned


def run_import(upload_id: int) -> None:
    """What the queue task calls: import, or resume, one upload. Safe to call twice."""
    pipeline.run(upload_id)
