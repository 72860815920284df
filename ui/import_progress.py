"""One progress poller per process, shared by every open page.

A single timer reads the uploads that are running (or that just finished) once a second
and publishes what it found; pages subscribe instead of querying the database themselves,
so a hundred open tabs cost the same one query per second as one tab.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from nicegui import app, run, ui
from nicegui.event import Event
from sqlalchemy import func, or_
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from importer.db import session_scope
from importer.models import FINISHED_STATUSES, Upload, UploadStatus, utcnow
from ui.frame import add_frame_hook

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
RATE_WINDOW_SECONDS = 10.0
ACTIVE_STATUSES = (UploadStatus.pending.value, UploadStatus.processing.value)
FINISHED_VALUES = frozenset(status.value for status in FINISHED_STATUSES)


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def duration_of(started_at: Optional[datetime], finished_at: Optional[datetime]) -> Optional[float]:
    """Seconds an import ran, or has been running so far."""
    if started_at is None:
        return None
    return ((finished_at or utcnow()) - started_at).total_seconds()


def import_summary(upload: Upload) -> str:
    """The one line a user wants at the end: what happened to the catalogue and to the file's rows."""
    if upload.status == UploadStatus.failed.value:
        return f"Failed: {upload.error or 'unknown error'}"
    if upload.status == UploadStatus.cancelled.value:
        return "Cancelled: the catalogue was not changed."
    products = upload.created + upload.updated + upload.unchanged
    merged = max(0, (upload.total_rows or 0) - upload.failed_rows - products)
    unchanged = f", {upload.unchanged:,} unchanged" if upload.unchanged else ""
    return (f"{plural(products, 'product')}: {upload.created:,} created, {upload.updated:,} updated{unchanged}, "
            f"{plural(merged, 'duplicate')} merged / {upload.failed_rows:,} rejected")


@dataclass(frozen=True)
class ImportProgress:
    """One upload as the poller last saw it, with the speed measured over the last few seconds."""

    upload: Upload
    rows_per_second: Optional[float]
    seconds_left: Optional[float]

    @property
    def upload_id(self) -> int:
        assert self.upload.id is not None
        return self.upload.id

    @property
    def is_finished(self) -> bool:
        return self.upload.status in FINISHED_VALUES

    def describe(self) -> str:
        """Rows, speed and time left, as one line under the progress bar."""
        upload = self.upload
        if self.is_finished:
            return import_summary(upload)
        if upload.status == UploadStatus.pending.value:
            return "Waiting for a worker…"
        rows = f"{upload.processed_rows:,}" + (f" of {upload.total_rows:,}" if upload.total_rows else "")
        parts = [f"{rows} rows"]
        if self.rows_per_second:
            parts.append(f"{self.rows_per_second:,.0f} rows/s")
        elapsed = duration_of(upload.started_at, None)
        if elapsed is not None:
            parts.append(f"{format_seconds(elapsed)} elapsed")
        if self.seconds_left is not None:
            parts.append(f"about {format_seconds(self.seconds_left)} left")
        return " · ".join(parts)


class _RateWindow:
    """Recent (time, rows, percent) samples of one upload: speed and time left from real movement.

    Only staging moves row by row; the merge is one transaction with no honest estimate.
    """

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int, float]] = deque()

    def add(self, upload: Upload) -> tuple[Optional[float], Optional[float]]:
        if upload.stage != "staging":
            self._samples.clear()
            return None, None
        now = time.monotonic()
        self._samples.append((now, upload.processed_rows, upload.progress))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()
        first_time, first_rows, first_percent = self._samples[0]
        elapsed = now - first_time
        if elapsed <= 0:
            return None, None
        rows_per_second = (upload.processed_rows - first_rows) / elapsed or None
        percent_per_second = (upload.progress - first_percent) / elapsed
        seconds_left = (100.0 - upload.progress) / percent_per_second if percent_per_second > 0 else None
        return rows_per_second, seconds_left


class ImportMonitor:
    """Reads running uploads once per interval and tells subscribed pages what changed.

    It watches the uploads that were running at the previous poll, those explicitly handed
    to `watch`, and every upload newer than the last one seen, so an import that starts and
    ends between two polls is still reported as finished exactly once.
    """

    def __init__(self) -> None:
        self.changed: Event[list[ImportProgress]] = Event()
        self.finished: Event[ImportProgress] = Event()
        self._latest: dict[int, ImportProgress] = {}
        self._rates: dict[int, _RateWindow] = {}
        self._watched: set[int] = set()
        self._newest_seen_id: Optional[int] = None
        self._polling = asyncio.Lock()
        self._database_down = False

    def start(self) -> None:
        app.timer(POLL_SECONDS, self.poll)

    def running(self) -> list[ImportProgress]:
        """The running uploads as of the last poll, newest first, without asking the database."""
        return sorted(self._latest.values(), key=lambda progress: -progress.upload_id)

    def watch(self, upload_id: int) -> None:
        """Report this upload on the next polls, for example right after a retry re-queued it."""
        self._watched.add(upload_id)

    def _has_subscribers(self) -> bool:
        return bool(self.changed.callbacks or self.finished.callbacks)

    async def poll(self) -> None:
        if not self._has_subscribers():
            return
        async with self._polling:
            watched = frozenset(self._watched | set(self._latest))
            try:
                found = await run.io_bound(self._read, self._newest_seen_id, watched)
            except SQLAlchemyError as exc:
                self._report_outage(exc)
                return
            self._report_outage(None)
            if found is not None:  # None: the app is shutting down
                self._newest_seen_id, uploads = found
                self._publish(uploads)

    def _report_outage(self, error: Optional[Exception]) -> None:
        """Log when the database stops and starts answering, not once a second in between."""
        if error is not None and not self._database_down:
            log.warning("import progress: the database is not answering (%s); retrying every second", error)
        elif error is None and self._database_down:
            log.warning("import progress: the database answers again")
        self._database_down = error is not None

    @staticmethod
    def _read(newest_seen_id: Optional[int], watched: frozenset[int]) -> tuple[int, list[Upload]]:
        """The uploads worth reporting, and the newest id the next poll will compare against."""
        running = Upload.status.in_(ACTIVE_STATUSES)  # type: ignore[attr-defined]
        with session_scope() as session:
            if newest_seen_id is None:
                newest_seen_id = session.exec(select(func.max(Upload.id))).one() or 0
                wanted = running
            else:
                wanted = or_(running, Upload.id > newest_seen_id, Upload.id.in_(watched))  # type: ignore[union-attr,operator]
            uploads = list(session.exec(select(Upload).where(wanted)).all())
        return max([newest_seen_id, *(upload.id or 0 for upload in uploads)]), uploads

    def _publish(self, uploads: list[Upload]) -> None:
        progress = [self._measure(upload) for upload in uploads]
        self._latest = {item.upload_id: item for item in progress if not item.is_finished}
        done = [item for item in progress if item.is_finished]
        self._watched.difference_update(item.upload_id for item in done)
        for gone in set(self._rates) - set(self._latest):
            del self._rates[gone]
        if progress:
            self.changed.emit(progress)
        for item in done:
            self.finished.emit(item)

    def _measure(self, upload: Upload) -> ImportProgress:
        assert upload.id is not None
        if upload.status in FINISHED_VALUES:
            return ImportProgress(upload, None, None)
        rows_per_second, seconds_left = self._rates.setdefault(upload.id, _RateWindow()).add(upload)
        return ImportProgress(upload, rows_per_second, seconds_left)


def _notify(upload: Upload) -> None:
    if upload.status == UploadStatus.failed.value:
        message, kind = f"Import of {upload.filename} failed: {upload.error or 'unknown error'}", "negative"
    elif upload.status == UploadStatus.cancelled.value:
        message, kind = f"Import of {upload.filename} was cancelled; the catalogue was not changed.", "info"
    else:
        kind = "positive" if upload.status == UploadStatus.completed.value else "warning"
        message = f"Import of {upload.filename} finished: {import_summary(upload)}"
    ui.notify(message, type=kind, multi_line=True, close_button="OK", timeout=15000, position="bottom-right")


def _subscribe_page_to_notifications() -> None:
    """Every page tells its user when an import that user started finishes, wherever they are."""
    user_id = app.storage.user.get("user_id")

    def notify_if_mine(progress: ImportProgress) -> None:
        if progress.upload.created_by_id == user_id:
            _notify(progress.upload)

    monitor.finished.subscribe(notify_if_mine)


monitor = ImportMonitor()
monitor.start()
add_frame_hook(_subscribe_page_to_notifications)
