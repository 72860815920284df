"""`/api/uploads/`: CSV imports over HTTP. The request body is parsed as it arrives and the
file part written straight under DATA_DIR/uploads, so no upload is ever held in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Optional

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from api.deps import CurrentUser, SessionDep
from api.pagination import Page, page_links
from importer import jobs
from importer.db import session_scope
from importer.errors import InvalidInput
from importer.models import FINISHED_STATUSES, UploadPublic
from tasks.imports import enqueue_import

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/uploads", tags=["uploads"])
CANCEL_WAIT_SECONDS = 3.0
CUT_OFF = "The upload was cut off before the end of the file; nothing was imported."


class _FilePart:
    """Feeds the body to python-multipart and hands on the bytes of the part named `file`."""

    def __init__(self, request: Request) -> None:
        content_type, options = parse_options_header(request.headers.get("content-type", ""))
        if content_type != b"multipart/form-data" or b"boundary" not in options:
            raise InvalidInput("file: send the CSV as multipart/form-data in a field named 'file'.")
        self._body = request.stream().__aiter__()
        self._headers: dict[bytes, bytes] = {}
        self._field, self._value = b"", b""
        self._in_file = self._file_done = False
        self.filename: Optional[str] = None
        self._pending: list[bytes] = []
        self._parser = MultipartParser(options[b"boundary"], {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._data, "on_part_end": self._part_end})

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and self.filename is None:
            self._in_file = True
            name = options.get(b"filename", b"").decode("utf-8", "replace")
            self.filename = "".join(char for char in name if char.isprintable()) or "upload.csv"  # PostgreSQL refuses NUL

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pending.append(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file, self._file_done = False, True

    async def _feed(self) -> bool:
        try:
            chunk = await self._body.__anext__()
        except StopAsyncIteration:
            return False
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise HTTPException(400, f"The multipart body is malformed: {exc}") from exc
        return True

    async def open(self) -> str:
        """Read until the file part begins; its filename."""
        while self.filename is None:
            if not await self._feed():
                raise InvalidInput("file: the form has no field named 'file'.")
        return self.filename

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file part's bytes; a body that ends before the part does is refused, not taken as the whole file
        (python-multipart's finalize() does not check for the closing boundary)."""
        while True:
            if self._pending:
                data, self._pending = b"".join(self._pending), []
                yield data
            if self._file_done:
                return
            if not await self._feed():
                raise HTTPException(400, CUT_OFF)


def _public(upload) -> UploadPublic:  # type: ignore[no-untyped-def]
    return UploadPublic.model_validate(upload)


def _queue(upload_id: int) -> None:
    """The upload is committed: if the queue is down, the reaper queues it once a worker can reach it."""
    try:
        enqueue_import(upload_id)
    except Exception as exc:  # noqa: BLE001 - any queue failure: Redis or the SQLite queue file
        log.warning("could not queue upload %s: %s", upload_id, exc)


def _record(filename: str, stored: jobs.StoredFile, user_id: int) -> UploadPublic:
    """A short transaction once the whole file is stored; a file whose row cannot be written is removed."""
    try:
        with session_scope() as session:
            upload = _public(jobs.create_upload(session, filename=filename, stored_path=stored.path,
                                                size_bytes=stored.size_bytes, user_id=user_id))
    except BaseException:
        stored.path.unlink(missing_ok=True)
        raise
    _queue(upload.id)
    return upload


@router.post("/", status_code=202, response_model=UploadPublic)
async def create_upload(request: Request, user: CurrentUser) -> UploadPublic | JSONResponse:
    """No request session: the body may stream for minutes, and nothing may hold a connection or lock meanwhile."""
    try:
        jobs.check_declared_length(request.headers.get("content-length"))
        part = _FilePart(request)
        filename = await part.open()
        stored = await jobs.astore_upload(part.chunks(), filename)
    except jobs.UploadTooLarge as exc:
        return JSONResponse({"detail": str(exc)}, status_code=413)
    return await run_in_threadpool(_record, filename, stored, user.id)  # type: ignore[arg-type]


@router.get("/", response_model=Page[UploadPublic])
def list_uploads(
    request: Request,
    session: SessionDep,
    _: CurrentUser,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=jobs.MAX_PAGE_SIZE)] = 20,
) -> Page[UploadPublic]:
    count, uploads = jobs.list_uploads(session, page=page, page_size=page_size)
    next_url, previous_url = page_links(request, page, page * page_size < count)
    return Page[UploadPublic](count=count, next=next_url, previous=previous_url,
                              results=[_public(upload) for upload in uploads])


@router.get("/{upload_id}/", response_model=UploadPublic)
def get_upload(upload_id: int, session: SessionDep, _: CurrentUser) -> UploadPublic:
    return _public(jobs.get_upload(session, upload_id))


@router.post("/{upload_id}/cancel/", response_model=UploadPublic)
async def cancel_upload(upload_id: int, session: SessionDep, _: CurrentUser) -> UploadPublic:
    """Answers once the worker has stopped (within a few seconds) or with the cancel still pending."""

    def cancel() -> UploadPublic:
        return _public(jobs.request_cancel(session, upload_id))

    def current() -> UploadPublic:
        with session_scope() as session:
            return _public(jobs.get_upload(session, upload_id))

    upload = await run_in_threadpool(cancel)
    finished = {status.value for status in FINISHED_STATUSES}
    for _ in range(int(CANCEL_WAIT_SECONDS / 0.1)):
        if upload.status in finished:
            break
        await asyncio.sleep(0.1)
        upload = await run_in_threadpool(current)
    return upload


@router.post("/{upload_id}/process/", status_code=202, response_model=UploadPublic)
def process_upload(upload_id: int, session: SessionDep, _: CurrentUser) -> UploadPublic:
    upload = jobs.requeue(session, upload_id)
    _queue(upload_id)
    return _public(upload)


@router.get("/{upload_id}/errors/")
def upload_errors(upload_id: int, session: SessionDep, _: CurrentUser) -> StreamingResponse:
    jobs.get_upload(session, upload_id)
    headers = {"Content-Disposition": f'attachment; filename="upload-{upload_id}-errors.csv"'}
    chunks = (chunk.encode("utf-8") for chunk in jobs.iter_error_report(upload_id))
    return StreamingResponse(chunks, media_type="text/csv; charset=utf-8", headers=headers)
