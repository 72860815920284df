"""`/api/uploads/`: multipart upload streamed to disk, the size limit, listing, cancel, re-process, errors."""

from __future__ import annotations

import csv
import io
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from huey.storage import RedisStorage
from sqlalchemy import Connection, delete, text, update

from importer import jobs, search_index
from importer.config import get_settings
from importer.db import get_engine, session_scope
from importer.models import ApiToken, User, utcnow
from tests.importer.ingest_support import DATA, catalogue, csv_bytes, wait_for

FINISHED = {"completed", "completed_with_errors", "failed", "cancelled"}
UPLOAD_FIELDS = {"id", "filename", "status", "stage", "progress", "total_rows", "processed_rows", "created", "updated",
                 "failed_rows", "error", "created_at", "started_at", "finished_at"}


def _finished(client, upload_id: int) -> dict | None:  # type: ignore[no-untyped-def, type-arg]
    body = client.get(f"/api/uploads/{upload_id}/").json()
    return body if body["status"] in FINISHED else None


def _post(client, data: bytes, filename: str = "products.csv"):  # type: ignore[no-untyped-def]
    return client.post("/api/uploads/", files={"file": (filename, data, "text/csv")})


@pytest.fixture
def small_upload_limit() -> Iterator[None]:
    """MAX_UPLOAD_MB=1 for one test; settings are read once, so the cache is reset around it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAX_UPLOAD_MB", "1")
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()


def test_upload_is_accepted_queued_and_imported(client, worker, data_dir) -> None:  # type: ignore[no-untyped-def]
    response = _post(client, (DATA / "products_1000.csv").read_bytes(), "products_1000.csv")
    assert response.status_code == 202
    body = response.json()
    assert UPLOAD_FIELDS <= set(body)
    assert (body["filename"], body["status"], body["progress"]) == ("products_1000.csv", "pending", 0.0)
    done = wait_for(lambda: _finished(client, body["id"]))
    assert (done["status"], done["created"], done["total_rows"], done["progress"]) == ("completed", 999, 1000, 100.0)
    assert len(catalogue()) == 999
    assert not _stored_path(body["id"]).exists(), "a completed import's file is removed"
    wait_for(lambda: _search_pending() == 0)  # the import queues the search indexer (a no-op on SQLite)


def _search_pending() -> int:
    with session_scope() as session:
        return search_index.pending_count(session)


def test_the_body_is_stored_byte_for_byte_in_the_data_directory(client, data_dir) -> None:  # type: ignore[no-untyped-def]
    response = _post(client, (DATA / "products_1000.csv").read_bytes(), "products_1000.csv")
    assert response.status_code == 202
    stored = _stored_path(response.json()["id"])
    assert stored.parent == data_dir / "uploads"
    assert stored.read_bytes() == (DATA / "products_1000.csv").read_bytes()


def _stored_path(upload_id: int) -> Path:
    with session_scope() as session:
        return Path(jobs.get_upload(session, upload_id).stored_path)


def test_list_is_newest_first_and_paged(client) -> None:  # type: ignore[no-untyped-def]
    ids = [_post(client, csv_bytes([["sku", "name"], [f"A-{i}", "x"]]), f"f{i}.csv").json()["id"] for i in range(3)]
    page = client.get("/api/uploads/", params={"page_size": 2}).json()
    assert page["count"] == 3
    assert [item["id"] for item in page["results"]] == ids[::-1][:2]
    assert page["next"] and page["previous"] is None
    assert [item["id"] for item in client.get(page["next"]).json()["results"]] == [ids[0]]


def test_over_the_limit_by_content_length_is_413(client, small_upload_limit) -> None:  # type: ignore[no-untyped-def]
    response = _post(client, b"sku,name\r\n" + b"A,B\r\n" * 400_000)
    assert response.status_code == 413
    assert response.json() == {"detail": "The file is over the 1 MB upload limit."}


def test_over_the_limit_while_streaming_is_413_and_nothing_kept(client, small_upload_limit, data_dir) -> None:  # type: ignore[no-untyped-def]
    boundary = "bench-boundary"
    before = set((data_dir / "uploads").glob("*")) if (data_dir / "uploads").exists() else set()

    def body() -> Iterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
               "Content-Type: text/csv\r\n\r\nsku,name\r\n").encode()
        for _ in range(40):
            yield b"A,B\r\n" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post("/api/uploads/", content=body(),
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413
    assert set((data_dir / "uploads").glob("*")) == before
    assert client.get("/api/uploads/").json()["count"] == 0


def test_without_a_file_field_is_422(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/uploads/", files={"other": ("x.csv", b"sku,name\r\n", "text/csv")})
    assert response.status_code == 422
    assert response.json() == {"detail": "file: the form has no field named 'file'."}
    assert client.post("/api/uploads/", json={"file": "x"}).status_code == 422


def test_authentication_is_required(anon_client) -> None:  # type: ignore[no-untyped-def]
    assert anon_client.get("/api/uploads/").status_code == 401
    assert anon_client.post("/api/uploads/", files={"file": ("x.csv", b"sku,name\r\n", "text/csv")}).status_code == 401


def test_unknown_upload_is_404(client) -> None:  # type: ignore[no-untyped-def]
    for response in (client.get("/api/uploads/999/"), client.post("/api/uploads/999/cancel/"),
                     client.post("/api/uploads/999/process/"), client.get("/api/uploads/999/errors/")):
        assert response.status_code == 404
        assert response.json() == {"detail": "Upload 999 not found."}


def test_error_report_lists_rejected_rows_spreadsheet_safe(client, worker) -> None:  # type: ignore[no-untyped-def]
    data = csv_bytes([["sku", "name", "is_active"], ["A-1", "Alpha", "yes"], ["", "=1+1", "no"],
                      ["B-2", "Beta", "+maybe"]])
    upload_id = _post(client, data).json()["id"]
    done = wait_for(lambda: _finished(client, upload_id))
    assert (done["status"], done["failed_rows"], done["created"]) == ("completed_with_errors", 2, 1)
    response = client.get(f"/api/uploads/{upload_id}/errors/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [["row", "column", "value", "message"],
                    ["3", "sku", "", "SKU is empty."],
                    ["4", "is_active", "'+maybe", "is_active must be true or false (or yes/no, 1/0); got '+maybe'."]]


def test_file_fault_fails_then_process_requeues_it(client, worker) -> None:  # type: ignore[no-untyped-def]
    upload_id = _post(client, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "picture.csv").json()["id"]
    failed = wait_for(lambda: _finished(client, upload_id))
    assert failed["status"] == "failed" and "not a CSV text file" in failed["error"]
    response = client.post(f"/api/uploads/{upload_id}/process/")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert wait_for(lambda: _finished(client, upload_id))["status"] == "failed"


def test_cancel_a_finished_upload_is_422_and_process_a_completed_one_too(client, worker) -> None:  # type: ignore[no-untyped-def]
    upload_id = _post(client, csv_bytes([["sku", "name"], ["A-1", "Alpha"]])).json()["id"]
    wait_for(lambda: _finished(client, upload_id))
    assert client.post(f"/api/uploads/{upload_id}/cancel/").status_code == 422
    assert client.post(f"/api/uploads/{upload_id}/process/").status_code == 422


def test_cancel_a_pending_upload(client) -> None:  # type: ignore[no-untyped-def]
    upload_id = _post(client, csv_bytes([["sku", "name"], ["A-1", "Alpha"]])).json()["id"]
    response = client.post(f"/api/uploads/{upload_id}/cancel/")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["stage"]) == ("cancelled", "cancelled")


BOUNDARY = "test-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
CUT_OFF = {"detail": "The upload was cut off before the end of the file; nothing was imported."}


def _file_part(filename: str = "products.csv") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: text/csv\r\n\r\nsku,name\r\nA-1,Alpha\r\n").encode()


CLOSING = f"\r\n--{BOUNDARY}--\r\n".encode()


def _stored(data_dir: Path) -> set[Path]:
    return set((data_dir / "uploads").glob("*")) if (data_dir / "uploads").exists() else set()


@pytest.fixture
def live_api(api_app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The API on a real server thread: TestClient reads a request body whole before the app sees it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(api_app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=15)
    listener.close()


class _SlowUpload:
    """Sends a file part, then waits for `finish` before sending the rest and the closing boundary."""

    def __init__(self, base_url: str, token: str) -> None:
        self.finish = threading.Event()
        self.response: httpx.Response | None = None
        self.thread = threading.Thread(target=self._send, args=(base_url, token))

    def _body(self) -> Iterator[bytes]:
        yield _file_part()
        self.finish.wait(timeout=120)
        yield b"B-2,Beta\r\n" + CLOSING

    def _send(self, base_url: str, token: str) -> None:
        self.response = httpx.post(f"{base_url}/api/uploads/", content=self._body(), timeout=120,
                                   headers={**MULTIPART, "Authorization": f"Bearer {token}"})


@contextmanager
def _slow_upload(base_url: str, token: str, data_dir: Path) -> Iterator[_SlowUpload]:
    """Yields once the server is writing the file part; the upload completes on leaving the block."""
    before = _stored(data_dir)
    upload = _SlowUpload(base_url, token)
    upload.thread.start()
    try:
        wait_for(lambda: _stored(data_dir) - before)
        yield upload
    finally:
        upload.finish.set()
        upload.thread.join(timeout=120)


@contextmanager
def _impatient_writer(lock_wait_seconds: int = 5) -> Iterator[Connection]:
    """A second writer that gives up after lock_wait_seconds instead of the usual 30 s (or never); commits on exit."""
    with get_engine().connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        connection.exec_driver_sql(f"PRAGMA busy_timeout={lock_wait_seconds * 1000}" if sqlite
                                   else f"SET LOCAL lock_timeout = '{lock_wait_seconds}s'")
        try:
            yield connection
            connection.commit()
        finally:
            if sqlite:
                connection.invalidate()  # not back to the pool with the short busy timeout


def _transactions_left_open() -> int:
    with get_engine().connect() as connection:
        if connection.dialect.name == "sqlite":
            return 0
        return connection.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                       "AND state LIKE 'idle in transaction%'")).scalar_one()


def test_a_streaming_upload_blocks_no_other_writer(live_api, admin, data_dir) -> None:  # type: ignore[no-untyped-def]
    """Its first request touches the token's last use; that write must not stay open while the body streams."""
    with _slow_upload(live_api, admin["token"], data_dir) as upload:
        with _impatient_writer() as writer:
            writer.execute(update(ApiToken).values(last_used_at=utcnow()))
        assert _transactions_left_open() == 0
    assert upload.response is not None and upload.response.status_code == 202


def test_a_file_whose_upload_row_cannot_be_written_is_removed(live_api, admin, data_dir) -> None:  # type: ignore[no-untyped-def]
    before = _stored(data_dir)
    with _slow_upload(live_api, admin["token"], data_dir) as upload:
        with _impatient_writer() as writer:  # the uploader is deleted meanwhile: the row's user no longer exists
            writer.execute(delete(User).where(User.id == admin["id"]))
    assert upload.response is not None and upload.response.status_code == 500
    assert _stored(data_dir) == before
    with session_scope() as session:
        assert session.execute(text("SELECT count(*) FROM uploads")).scalar_one() == 0


def test_a_body_cut_off_inside_the_file_is_400_and_nothing_kept(client, data_dir) -> None:  # type: ignore[no-untyped-def]
    before = _stored(data_dir)
    for cut_off in (_file_part() + b"B-2,Be", _file_part() + b"B-2,Beta\r\n--" + BOUNDARY.encode()):
        response = client.post("/api/uploads/", content=cut_off, headers=MULTIPART)
        assert (response.status_code, response.json()) == (400, CUT_OFF)
    assert _stored(data_dir) == before
    assert client.get("/api/uploads/").json()["count"] == 0


def test_a_malformed_body_is_400(client, data_dir) -> None:  # type: ignore[no-untyped-def]
    before = _stored(data_dir)
    for malformed in (b"not multipart at all\r\n", _file_part() + b"B-2,Beta\r\n--" + BOUNDARY.encode() + b"\r\nbad header\r\n\r\n"):
        response = client.post("/api/uploads/", content=malformed, headers=MULTIPART)
        assert response.status_code == 400
        assert response.json()["detail"].startswith("The multipart body is malformed: ")
    assert _stored(data_dir) == before


def test_only_a_plain_extension_of_the_filename_is_kept(client, data_dir) -> None:  # type: ignore[no-untyped-def]
    before = _stored(data_dir)
    for filename, extension in (("products.c\x00sv", ".csv"), ("products.TXT", ".txt"), ("products.c v", ".csv"),
                                ("products.abcdefghijk", ".csv"), ("products", ".csv")):
        response = client.post("/api/uploads/", content=_file_part(filename) + CLOSING, headers=MULTIPART)
        assert response.status_code == 202, filename
        assert response.json()["filename"] == filename.replace("\x00", "")
        (stored,) = _stored(data_dir) - before
        assert stored.suffix == extension
        before.add(stored)


def test_a_filename_with_a_nul_is_stored_as_csv(data_dir) -> None:
    """What reaches the core from other paths (the UI) may still hold a NUL, which open() refuses."""
    stored = jobs.store_upload([b"sku,name\r\n"], "products.c\x00sv")
    assert stored.path.suffix == ".csv" and stored.path.read_bytes() == b"sku,name\r\n"
    stored.path.unlink()


@pytest.fixture
def queue_down() -> Iterator[None]:
    """The queue's storage pointed at a port nothing listens on, on either backend."""
    from tasks import huey

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huey, "storage", RedisStorage(huey.name, url="redis://127.0.0.1:1/0"))
        yield


def test_with_the_queue_down_an_upload_is_still_accepted(client, queue_down) -> None:  # type: ignore[no-untyped-def]
    response = _post(client, csv_bytes([["sku", "name"], ["A-1", "Alpha"]]))
    assert (response.status_code, response.json()["status"]) == (202, "pending")
    upload_id = response.json()["id"]
    assert client.post(f"/api/uploads/{upload_id}/cancel/").json()["status"] == "cancelled"
    response = client.post(f"/api/uploads/{upload_id}/process/")
    assert (response.status_code, response.json()["status"]) == (202, "pending")
