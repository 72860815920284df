"""A thread beside a running import: keeps its heartbeat fresh and stops it when asked.

It polls the upload row and the cancel marker file twice a second (a cancel cannot always
write to the database at once: a SQLite merge holds the only write lock). When a cancel is requested, or another worker has
claimed the upload (its heartbeat went stale), it flags the import to stop and interrupts the
statement in flight (psycopg2 `cancel()`, sqlite3 `interrupt()`), so even a long merge ends
within a second or so and rolls back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import select, update

from importer.config import get_settings
from importer.db import get_engine
from importer.models import Upload, utcnow

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


class Watchdog:
    def __init__(self, upload_id: int, token: int, interrupt: Callable[[Any], None], marker: Path) -> None:
        self.upload_id = upload_id
        self._marker = marker
        self.token = token
        self._interrupt = interrupt
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._guarded: Any = None
        self._beating = True
        self._last_beat = time.monotonic()
        self._beat_every = max(0.5, min(5.0, get_settings().stale_import_seconds / 4))
        self._thread = threading.Thread(target=self._run, name=f"import-{upload_id}-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._closed.set()
        self._thread.join()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def touch(self) -> None:
        """The import itself just wrote a heartbeat (with a checkpoint)."""
        self._last_beat = time.monotonic()

    @contextmanager
    def guard(self, dbapi_connection: Any, *, heartbeat: bool = True) -> Iterator[None]:
        """While inside, a stop interrupts this connection's statement."""
        with self._lock:
            self._guarded, self._beating = dbapi_connection, heartbeat
        try:
            yield
        finally:
            with self._lock:
                self._guarded, self._beating = None, True

    def _run(self) -> None:
        while not self._closed.wait(POLL_SECONDS):
            try:
                self._check()
            except Exception:  # noqa: BLE001 - a database outage is the import's to handle; keep watching
                log.debug("watchdog check for upload %s failed", self.upload_id, exc_info=True)

    def _check(self) -> None:
        if self._marker.exists():
            self._request_stop()
            return
        with get_engine().connect() as connection:
            row = connection.execute(
                select(Upload.cancel_requested, Upload.attempts).where(Upload.id == self.upload_id)).first()
            if row is None or row.cancel_requested or row.attempts != self.token:
                self._request_stop()
                return
            if self._beating and time.monotonic() - self._last_beat >= self._beat_every:
                connection.execute(update(Upload).where(Upload.id == self.upload_id, Upload.attempts == self.token)
                                   .values(heartbeat_at=utcnow()))
                connection.commit()
                self.touch()

    def _request_stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        with self._lock:
            if self._guarded is not None:
                log.info("interrupting the running statement of upload %s", self.upload_id)
                self._interrupt(self._guarded)
