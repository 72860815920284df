"""The desktop window (`python main.py --native`): its set-up and its way of importing a file.

In the window, app and user share one machine, so a chosen file is copied into DATA_DIR by
path instead of travelling through HTTP; the copy keeps the import resumable even if the
original moves. pywebview is imported only here and only in native mode, so the server
install does not need it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Optional

from nicegui import app, run, ui

from importer.config import ConfigError
from importer.db import session_scope
from importer.errors import ImporterError
from importer.jobs import import_local_file
from importer.models import Upload
from tasks.imports import enqueue_import

log = logging.getLogger(__name__)

CSV_FILE_TYPES = ("CSV files (*.csv;*.tsv;*.txt)", "All files (*.*)")


def is_native() -> bool:
    """True inside the desktop window's server, where a window can show system dialogs."""
    return app.native.main_window is not None


def prepare_native_window() -> None:
    """Pick the GUI toolkit that requirements-native.txt installs, before the window starts."""
    if importlib.util.find_spec("webview") is None:
        raise ConfigError("the desktop window needs its packages: pip install -r requirements-native.txt")
    if sys.platform.startswith("linux"):
        app.native.start_args["gui"] = "qt"
        if os.geteuid() == 0:
            # Chromium, inside Qt WebEngine, refuses to run as root with its sandbox on.
            log.warning("running as root: the window's web engine runs without its sandbox")
            os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
    app.native.on("loaded", lambda: log.info("the desktop window has loaded the app"))


async def choose_local_file() -> Optional[Path]:
    """Ask with the system's file dialog; None when the user cancels it."""
    import webview

    window = app.native.main_window
    if window is None:
        raise RuntimeError("the system file dialog exists only in the desktop window (--native)")
    chosen = await window.create_file_dialog(webview.FileDialog.OPEN, directory=str(Path.home()),
                                             file_types=CSV_FILE_TYPES)
    return Path(chosen[0]) if chosen else None


def import_path(source: Path, user_id: int) -> Upload:
    """Copy the file into DATA_DIR, record the upload, then queue it (after the commit)."""
    with session_scope() as session:
        upload = import_local_file(session, source, user_id=user_id)
    assert upload.id is not None
    try:
        enqueue_import(upload.id)
    except Exception as exc:  # noqa: BLE001 - any queue failure: the upload is stored, the reaper queues it later
        log.warning("could not queue upload %s: %s", upload.id, exc)
    return upload


async def choose_and_import_local_file(user_id: int) -> Optional[Upload]:
    """Let the user pick a CSV and start importing it; None when nothing was imported.

    Problems with the file (unreadable, too large, not a file) are shown to the user here.
    """
    source = await choose_local_file()
    if source is None:
        return None
    try:
        upload = await run.io_bound(import_path, source, user_id)
    except (ImporterError, OSError) as exc:
        ui.notify(f"Could not import {source.name}: {exc}", type="negative", multi_line=True)
        return None
    log.info("importing %s from the desktop window as upload %s", source, upload.id)
    return upload
