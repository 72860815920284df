"""The Imports page: upload a CSV, watch it import, and look back over earlier imports."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Optional

from nicegui import app, events, run, ui
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from importer import jobs
from importer.config import get_settings
from importer.errors import ImporterError
from importer.models import Upload, UploadStatus
from tasks.imports import enqueue_import
from ui import native_import
from ui.frame import app_page, confirm, in_database
from ui.import_progress import ImportProgress, duration_of, format_seconds, import_summary, monitor

log = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 10
FIRST_ERRORS_SHOWN = 20

STATUS_LOOK = {
    UploadStatus.pending.value: ("Queued", "grey-7", "schedule"),
    UploadStatus.processing.value: ("Importing", "primary", "sync"),
    UploadStatus.completed.value: ("Completed", "positive", "check_circle"),
    UploadStatus.completed_with_errors.value: ("Completed with errors", "warning", "warning"),
    UploadStatus.failed.value: ("Failed", "negative", "error"),
    UploadStatus.cancelled.value: ("Cancelled", "grey-6", "block"),
}
RUNNING = {UploadStatus.pending.value, UploadStatus.processing.value}
RETRYABLE = {UploadStatus.failed.value, UploadStatus.cancelled.value}
STAGE_LABELS = {
    "queued": "waiting in the queue",
    "reading": "reading the header",
    "staging": "reading and checking rows",
    "merging": "applying to the catalogue",
    "done": "done",
}
DELIMITER_NAMES = {",": "comma (,)", ";": "semicolon (;)", "\t": "tab", "|": "pipe (|)"}


def _status_look(status: str) -> tuple[str, str, str]:
    return STATUS_LOOK.get(status, (status, "grey-7", "help"))


def _utc(moment: Optional[datetime]) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _size_text(size_bytes: int) -> str:
    size = float(size_bytes)
    for unit in ("bytes", "KB", "MB"):
        if size < 1024:
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.2f} GB"


def _duration_text(upload: Upload) -> str:
    seconds = duration_of(upload.started_at, upload.finished_at)
    return "—" if seconds is None else format_seconds(seconds)


def _history_row(upload: Upload) -> dict[str, Any]:
    label, color, _ = _status_look(upload.status)
    if upload.status == UploadStatus.processing.value:
        label = f"{label} {upload.progress:.0f}%"
    return {
        "id": upload.id,
        "filename": upload.filename,
        "status": upload.status,
        "status_label": label,
        "status_color": color,
        "created": upload.created,
        "updated": upload.updated,
        "failed_rows": upload.failed_rows,
        "total_rows": upload.total_rows,
        "duration": _duration_text(upload),
        "started": (upload.started_at or upload.created_at).isoformat(),
        "can_cancel": upload.status in RUNNING,
        "can_retry": upload.status in RETRYABLE or jobs.is_interrupted(upload),
        "has_errors": upload.failed_rows > 0,
    }


def cancel_import(upload_id: int, filename: str) -> None:
    async def cancel() -> None:
        if await in_database(f"Could not cancel {filename}", lambda s: jobs.request_cancel(s, upload_id)):
            monitor.watch(upload_id)
            ui.notify(f"Cancelling the import of {filename}…", type="info")

    confirm("Cancel this import?", f"{filename}: the catalogue stays as it was before this import.",
            "Cancel import", cancel)


async def queue_import(upload: Upload) -> None:
    """Queue a committed upload; if the queue is down, the reaper queues pending uploads once it is back."""
    assert upload.id is not None
    try:
        await run.io_bound(enqueue_import, upload.id)
    except Exception as exc:  # noqa: BLE001 - any queue failure: Redis or the SQLite queue file
        log.warning("could not queue upload %s: %s", upload.id, exc)
        ui.notify(f"{upload.filename} is saved, but the queue did not answer; its import will start as soon as "
                  "a worker can reach it.", type="warning", multi_line=True)


async def retry_import(upload_id: int, on_queued: Callable[[Upload], Awaitable[None]]) -> None:
    upload = await in_database("Could not retry the import", lambda s: jobs.requeue(s, upload_id))
    if upload is None:
        return
    await queue_import(upload)
    ui.notify(f"{upload.filename} is queued again.", type="info")
    await on_queued(upload)


def download_error_report(upload_id: int) -> None:
    ui.download.from_url(f"/api/uploads/{upload_id}/errors/")


def _fact(label: str, value: str) -> None:
    ui.label(label).classes("text-xs text-gray-500")
    ui.label(value).classes("text-sm break-all")


async def show_details(upload_id: int) -> None:
    """The why of an import: what was detected, what was ignored, and the first rejected rows."""
    found = await in_database("Could not load the import", lambda s: (
        jobs.get_upload(s, upload_id), list(jobs.first_errors(s, upload_id, FIRST_ERRORS_SHOWN))))
    if found is None:
        return
    upload, errors = found
    label, color, icon = _status_look(upload.status)
    with ui.dialog() as dialog, ui.card().classes("w-full max-w-4xl").mark("details-dialog"):
        with ui.row().classes("w-full items-center justify-between no-wrap"):
            with ui.row().classes("items-center gap-2 no-wrap min-w-0"):
                ui.icon(icon, color=color)
                ui.label(upload.filename).classes("text-lg font-semibold truncate")
                ui.badge(label, color=color)
            ui.button(icon="close", on_click=dialog.close).props("flat round dense").mark("details-close")
        if upload.status not in RUNNING:
            ui.label(import_summary(upload)).classes("text-sm")
        if upload.error:
            with ui.row().classes("w-full items-start gap-2 p-3 rounded border border-red-400 text-negative no-wrap"):
                ui.icon("error", color="negative")
                ui.label(upload.error).classes("text-sm").mark("details-error")
        with ui.grid().classes("w-full grid-cols-2 md:grid-cols-4 gap-x-6 gap-y-1"):
            _fact("Encoding", upload.encoding or "not detected yet")
            _fact("Delimiter", DELIMITER_NAMES.get(upload.delimiter or "", upload.delimiter or "not detected yet"))
            _fact("Rows in file", "—" if upload.total_rows is None else f"{upload.total_rows:,}")
            _fact("Size", _size_text(upload.size_bytes))
            _fact("Started", _utc(upload.started_at))
            _fact("Finished", _utc(upload.finished_at))
            _fact("Duration", _duration_text(upload))
            _fact("Ignored columns", ", ".join(upload.ignored_columns) or "none")
        _rejected_rows(upload, errors)
    dialog.on("hide", dialog.delete)
    dialog.open()


def _rejected_rows(upload: Upload, errors: list[Any]) -> None:
    if not errors:
        ui.label("No rows were rejected.").classes("text-sm text-gray-500")
        return
    shown = f"the first {len(errors)} of {upload.failed_rows:,}" if upload.failed_rows > len(errors) else "all"
    with ui.row().classes("w-full items-center justify-between"):
        ui.label(f"Rejected rows ({shown})").classes("font-medium")
        ui.button("Download error report", icon="download",
                  on_click=lambda: download_error_report(upload.id or 0)).props("flat").mark("details-download")
    columns = [
        {"name": "row", "label": "Row", "field": "row", "align": "right"},
        {"name": "column", "label": "Column", "field": "column", "align": "left"},
        {"name": "value", "label": "Value", "field": "value", "align": "left",
         "classes": "ellipsis max-w-xs", "headerClasses": "max-w-xs"},
        {"name": "message", "label": "Reason", "field": "message", "align": "left"},
    ]
    rows = [{"key": index, "row": error.row_number, "column": error.column, "value": error.value,
             "message": error.message} for index, error in enumerate(errors)]
    ui.table(columns=columns, rows=rows, row_key="key").props("flat dense wrap-cells").classes("w-full").mark(
        "rejected-rows")


class ImportCard:
    """A running import on this page: live progress, then its summary until dismissed."""

    def __init__(self, upload: Upload) -> None:
        assert upload.id is not None
        self.upload_id = upload.id
        self.filename = upload.filename
        with ui.card().classes("w-full gap-2").mark(f"import-{upload.id}") as self.card:
            with ui.row().classes("w-full items-center justify-between no-wrap"):
                with ui.row().classes("items-center gap-2 no-wrap min-w-0"):
                    self.icon = ui.icon("schedule")
                    ui.label(upload.filename).classes("font-medium truncate")
                    self.badge = ui.badge()
                with ui.row().classes("items-center gap-1 no-wrap"):
                    ui.button("Details", icon="info", on_click=lambda: show_details(self.upload_id)).props(
                        "flat dense").mark("card-details")
                    self.cancel_button = ui.button(
                        "Cancel", icon="cancel", on_click=lambda: cancel_import(self.upload_id, self.filename))
                    self.cancel_button.props("flat dense color=negative").mark("card-cancel")
                    self.dismiss_button = ui.button(icon="close", on_click=self.card.delete)
                    self.dismiss_button.props("flat round dense").tooltip("Dismiss").mark("card-dismiss")
            with ui.row().classes("w-full items-center gap-3 no-wrap"):
                self.bar = ui.linear_progress(value=0, show_value=False, size="12px").props("rounded")
                self.percent = ui.label().classes("text-sm tabular-nums w-12 text-right")
            with ui.row().classes("w-full justify-between gap-x-4 gap-y-0 text-sm"):
                self.stage = ui.label().classes("text-gray-600")
                self.counts = ui.label().classes("tabular-nums")
            self.line = ui.label().classes("text-sm tabular-nums").mark("import-line")
        self.show(ImportProgress(upload, None, None))

    def show(self, progress: ImportProgress) -> None:
        upload = progress.upload
        label, color, icon = _status_look(upload.status)
        self.icon.props(f'name="{icon}" color="{color}"')
        self.badge.set_text(label)
        self.badge.props(f'color="{color}"')
        self.bar.set_value(upload.progress / 100)
        self.bar.props(f'color="{color}"')
        self.percent.set_text(f"{upload.progress:.0f}%")
        self._show_stage(upload, progress.is_finished)
        unchanged = f" · {upload.unchanged:,} unchanged" if upload.unchanged else ""
        self.counts.set_text(f"{upload.created:,} created · {upload.updated:,} updated{unchanged} · "
                             f"{upload.failed_rows:,} rejected")
        self.line.set_text(progress.describe())
        self.cancel_button.set_visibility(not progress.is_finished)
        self.dismiss_button.set_visibility(progress.is_finished)

    def _show_stage(self, upload: Upload, is_finished: bool) -> None:
        stage = STAGE_LABELS.get(upload.stage, upload.stage.replace("_", " "))
        self.stage.set_text(f"Stage: {'cancelling…' if upload.cancel_requested and not is_finished else stage}")
        if upload.stage == "merging":  # one transaction: the percent stands still until it commits
            self.bar.props("stripe")
        else:
            self.bar.props(remove="stripe")


NUMBER = "value => value == null ? '—' : value.toLocaleString()"


class UploadHistory:
    """Every upload, newest first, one page at a time from the server."""

    COLUMNS = [
        {"name": "filename", "label": "File", "field": "filename", "align": "left",
         "classes": "ellipsis max-w-[16rem]", "headerClasses": "max-w-[16rem]"},
        {"name": "status", "label": "Status", "field": "status_label", "align": "left"},
        {"name": "total_rows", "label": "Rows", "field": "total_rows", "align": "right", ":format": NUMBER,
         "classes": "gt-sm", "headerClasses": "gt-sm"},
        {"name": "created", "label": "Created", "field": "created", "align": "right", ":format": NUMBER},
        {"name": "updated", "label": "Updated", "field": "updated", "align": "right", ":format": NUMBER},
        {"name": "failed_rows", "label": "Rejected", "field": "failed_rows", "align": "right", ":format": NUMBER},
        {"name": "duration", "label": "Duration", "field": "duration", "align": "right",
         "classes": "gt-sm", "headerClasses": "gt-sm"},
        {"name": "started", "label": "Started", "field": "started", "align": "left",
         ":format": "value => value ? new Date(value).toLocaleString() : ''",
         "classes": "gt-xs", "headerClasses": "gt-xs"},
        {"name": "actions", "label": "", "field": "id", "align": "right"},
    ]
    ACTIONS = """
        <q-td :props="props" class="text-right no-wrap">
          <q-btn flat dense round icon="info" @click="$parent.$emit('details', props.row.id)">
            <q-tooltip>Details</q-tooltip></q-btn>
          <q-btn v-if="props.row.has_errors" flat dense round icon="download"
                 @click="$parent.$emit('download', props.row.id)">
            <q-tooltip>Download the error report</q-tooltip></q-btn>
          <q-btn v-if="props.row.can_retry" flat dense round icon="replay" color="primary"
                 @click="$parent.$emit('retry', props.row.id)">
            <q-tooltip>Retry</q-tooltip></q-btn>
          <q-btn v-if="props.row.can_cancel" flat dense round icon="cancel" color="negative"
                 @click="$parent.$emit('cancel', props.row.id)">
            <q-tooltip>Cancel</q-tooltip></q-btn>
        </q-td>
    """

    def __init__(self, on_requeued: Callable[[Upload], Awaitable[None]]) -> None:
        self.table = ui.table(columns=self.COLUMNS, rows=[], row_key="id", title="History",
                              pagination={"page": 1, "rowsPerPage": HISTORY_PAGE_SIZE, "rowsNumber": 0})
        self.table.classes("w-full").mark("history")
        self.table.props('flat bordered loading :rows-per-page-options="[10, 25, 50, 100]" '
                         'no-data-label="No imports yet: upload a CSV above to start one."')
        self.table.add_slot("body-cell-status", """
            <q-td :props="props"><q-badge :color="props.row.status_color" :label="props.value" /></q-td>
        """)
        self.table.add_slot("body-cell-actions", self.ACTIONS)
        self.table.on("request", self._on_request)
        self.table.on("details", lambda e: show_details(int(e.args)))
        self.table.on("download", lambda e: download_error_report(int(e.args)))
        self.table.on("retry", lambda e: retry_import(int(e.args), on_requeued))
        self.table.on("cancel", self._on_cancel)
        ui.timer(0, self.reload, once=True)

    @property
    def _rows_by_id(self) -> dict[int, dict[str, Any]]:
        return {row["id"]: row for row in self.table.rows}

    async def _on_request(self, event: events.GenericEventArguments) -> None:
        pagination = event.args["pagination"]
        await self.load(int(pagination.get("page") or 1), int(pagination.get("rowsPerPage") or HISTORY_PAGE_SIZE))

    def _on_cancel(self, event: events.GenericEventArguments) -> None:
        row = self._rows_by_id.get(int(event.args))
        if row is not None:
            cancel_import(row["id"], row["filename"])

    async def reload(self) -> None:
        pagination = self.table.pagination
        await self.load(pagination.get("page", 1), pagination.get("rowsPerPage", HISTORY_PAGE_SIZE))

    async def load(self, page: int, rows_per_page: int) -> None:
        self.table.props("loading")
        found = await in_database("Could not load the import history", lambda s: jobs.list_uploads(
            s, page=page, page_size=rows_per_page))
        self.table.props(remove="loading")
        if found is None:
            return
        count, uploads = found
        self.table.rows = [_history_row(upload) for upload in uploads]
        self.table.pagination = {"page": page, "rowsPerPage": rows_per_page, "rowsNumber": count}
        self.table.update()

    async def show(self, progress: list[ImportProgress]) -> None:
        """Refresh the visible rows in place; ask the database only when a new upload belongs on top."""
        rows = self._rows_by_id
        if self.table.pagination.get("page", 1) == 1 and any(item.upload_id > max(rows, default=0)
                                                             for item in progress):
            await self.reload()
            return
        shown = [item for item in progress if item.upload_id in rows]
        for item in shown:
            rows[item.upload_id].update(_history_row(item.upload))
        if shown:
            self.table.update()


class ImportsPanel:
    """The running imports at the top of the page, one card each."""

    def __init__(self) -> None:
        self._cards: dict[int, ImportCard] = {}
        self.column = ui.column().classes("w-full gap-2").mark("running-imports")
        self.show(monitor.running())

    def add(self, upload: Upload) -> None:
        """Follow an import started (or retried) from this page, to its summary."""
        assert upload.id is not None
        monitor.watch(upload.id)
        card = self._cards.get(upload.id)
        if card is not None:
            card.card.delete()
        with self.column:
            self._cards[upload.id] = ImportCard(upload)
        self._cards[upload.id].card.move(self.column, target_index=0)

    def show(self, progress: list[ImportProgress]) -> None:
        """Finished imports get a card only if this page started them or was already showing them."""
        for item in progress:
            card = self._cards.get(item.upload_id)
            if card is None and not item.is_finished:
                with self.column:
                    card = self._cards[item.upload_id] = ImportCard(item.upload)
                card.card.move(self.column, target_index=0)
            if card is not None and not card.card.is_deleted:
                card.show(item)


class UploadSizeLimit:
    """Refuse an oversized upload from its Content-Length, before NiceGUI spools all of it to disk.

    The exact check on the bytes themselves still happens when the file is stored.
    """

    ROUTE = re.compile(r"^/_nicegui/client/[^/]+/upload/\d+$")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.ROUTE.match(scope["path"]):
            try:
                jobs.check_declared_length(dict(scope["headers"]).get(b"content-length"))
            except jobs.UploadTooLarge as exc:
                await JSONResponse({"detail": str(exc)}, status_code=413)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def store_and_queue(file: ui.upload.FileUpload, user_id: int) -> Optional[Upload]:
    """Store the file with the same size check as the API, record the upload, then queue it."""
    try:
        stored = await jobs.astore_upload(file.iterate(), file.name)
    except (ImporterError, OSError) as exc:
        ui.notify(f"{file.name} was not stored: {exc}", type="negative", multi_line=True)
        return None
    upload = await in_database(f"{file.name} was not recorded", lambda session: jobs.create_upload(
        session, filename=file.name, stored_path=stored.path, size_bytes=stored.size_bytes, user_id=user_id))
    if upload is None:
        stored.path.unlink(missing_ok=True)
        return None
    await queue_import(upload)
    return upload


def _upload_card(user_id: int, on_stored: Callable[[Upload], Awaitable[None]]) -> None:
    settings = get_settings()

    async def received(event: events.UploadEventArguments) -> None:
        upload = await store_and_queue(event.file, user_id)
        if upload is not None:
            ui.notify(f"{upload.filename} uploaded; its import has started.", type="positive")
            await on_stored(upload)

    async def choose_local_file() -> None:
        upload = await native_import.choose_and_import_local_file(user_id)
        if upload is not None:
            await on_stored(upload)

    def rejected() -> None:
        ui.notify(f"That file is over the {settings.max_upload_mb:,} MB upload limit.", type="negative")

    def failed() -> None:
        uploader.reset()
        ui.notify(f"The upload did not go through: it was stopped, the server refused it or the connection "
                  f"dropped. Files may be up to {settings.max_upload_mb:,} MB.", type="negative", multi_line=True)

    with ui.card().classes("w-full gap-2"):
        ui.label("Import products from a CSV file").classes("text-lg font-medium")
        ui.label("Columns sku and name are required; description and is_active are optional; other columns are "
                 "ignored. A SKU that exists already (in any letter case) updates that product. The catalogue "
                 "changes only once the whole file is in.").classes("text-sm text-gray-600")
        if native_import.is_native():
            ui.button("Choose a CSV on this computer", icon="folder_open", on_click=choose_local_file).mark(
                "choose-local-file")
        uploader = ui.upload(label=f"Drop a CSV here or click + to choose one (up to {settings.max_upload_mb:,} MB)",
                             auto_upload=True, max_file_size=settings.max_upload_bytes,
                             on_upload=received, on_rejected=rejected)
        uploader.props('accept=".csv,.txt,.tsv,text/csv,text/plain" flat bordered color=primary')
        uploader.classes("w-full").mark("uploader")
        uploader.on("uploaded", uploader.reset, args=[])
        uploader.on("failed", failed, args=[])


@app_page("/imports", "Imports")
def imports_page() -> None:
    async def queued(upload: Upload) -> None:
        panel.add(upload)
        await history.reload()

    async def changed(progress: list[ImportProgress]) -> None:
        panel.show(progress)
        await history.show(progress)

    _upload_card(app.storage.user["user_id"], queued)  # app_page has checked the login
    panel = ImportsPanel()
    history = UploadHistory(queued)
    monitor.changed.subscribe(changed)


app.add_middleware(UploadSizeLimit)
