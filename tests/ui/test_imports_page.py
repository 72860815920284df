"""The Imports page in NiceGUI's simulated browser, with the real queue consumer of main.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Optional, TypeVar

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlmodel import func, select

from importer.config import get_settings
from importer.db import session_scope
from importer.models import Product, Upload, UploadStatus, utcnow

pytestmark = pytest.mark.ui

T = TypeVar("T")
TEST_DATA = Path(__file__).parent.parent / "data"
FINISHED = {status.value for status in (UploadStatus.completed, UploadStatus.completed_with_errors,
                                         UploadStatus.failed, UploadStatus.cancelled)}


async def _open_imports(user: User) -> None:
    await user.open("/imports")
    await user.should_see(marker="uploader")


async def _upload(user: User, filename: str, content: bytes) -> None:
    """Post the file the way the browser's QUploader does, to the route NiceGUI made for the element."""
    uploader = user.find(marker="uploader").elements.pop()
    response = await user.http_client.post(uploader.props["url"], files={"file": (filename, content, "text/csv")})
    assert response.status_code == 200, response.text


async def _eventually(check: Callable[[], Optional[T]], what: str, tries: int = 100) -> T:
    """Poll until `check` gives something truthy: the page, its handlers and the worker all answer later."""
    for _ in range(tries):
        result = check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen")


def _history(user: User) -> ui.table:
    table = user.find(marker="history").elements.pop()
    assert isinstance(table, ui.table)
    return table


def _card_line(user: User) -> str:
    label = user.find(marker="import-line").elements.pop()
    assert isinstance(label, ui.label)
    return label.text


async def _loaded_history(user: User) -> list[dict]:  # type: ignore[type-arg]
    return await _eventually(lambda: _history(user).rows, "loading the history")


def _finished_upload(upload_id: int) -> Optional[Upload]:
    with session_scope() as session:
        upload = session.get(Upload, upload_id)
    assert upload is not None
    return upload if upload.status in FINISHED else None


async def _wait_until_finished(upload_id: int) -> Upload:
    return await _eventually(lambda: _finished_upload(upload_id), f"finishing upload {upload_id}", tries=300)


def _upload_ids() -> list[int]:
    with session_scope() as session:
        return [upload_id for upload_id in session.exec(select(Upload.id)).all() if upload_id is not None]


async def _the_new_upload_id() -> int:
    """The upload handler runs after the POST has answered: wait for its row."""
    ids = await _eventually(_upload_ids, "recording the upload")
    assert len(ids) == 1, ids
    return ids[0]


def _add_upload(**fields: object) -> int:
    with session_scope() as session:
        upload = Upload(**{"filename": "catalogue.csv", "stored_path": "/nowhere/catalogue.csv", **fields})
        session.add(upload)
        session.flush()
        assert upload.id is not None
        return upload.id


async def test_an_uploaded_csv_is_imported_with_live_progress_and_a_summary(logged_in_user: User, admin: dict) -> None:  # type: ignore[type-arg]
    user = logged_in_user
    await _open_imports(user)
    await _upload(user, "products_1000.csv", (TEST_DATA / "products_1000.csv").read_bytes())

    upload_id = await _the_new_upload_id()
    await user.should_see(marker=f"import-{upload_id}")
    assert (await _wait_until_finished(upload_id)).created_by_id == admin["id"]
    summary = "999 products: 999 created, 0 updated, 1 duplicate merged / 0 rejected"
    await _eventually(lambda: _card_line(user) == summary, "showing the summary on the import's card")
    assert user.notify.contains(f"Import of products_1000.csv finished: {summary}")
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(Product)).one() == 999
    await user.should_see(marker="card-dismiss")
    row = _history(user).rows[0]
    assert (row["filename"], row["status"], row["created"]) == ("products_1000.csv", "completed", 999)
    assert user.notify.contains("products_1000.csv uploaded")


@pytest.fixture
def one_megabyte_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MAX_UPLOAD_MB", "1")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _stored_files(data_dir: Path) -> set[Path]:
    return {path for path in (data_dir / "uploads").glob("**/*") if path.is_file()}


OVERSIZED_CSV = b"sku,name\r\n" + b"sku-1,a name that repeats\r\n" * 50_000


async def test_a_file_declared_over_the_limit_is_refused_before_it_is_spooled(
        one_megabyte_limit: None, logged_in_user: User) -> None:
    user = logged_in_user
    await _open_imports(user)
    uploader = user.find(marker="uploader")
    url = uploader.elements.pop().props["url"]

    response = await user.http_client.post(url, files={"file": ("huge.csv", OVERSIZED_CSV, "text/csv")})
    assert response.status_code == 413
    assert response.json() == {"detail": "The file is over the 1 MB upload limit."}
    user.find(marker="uploader").trigger("failed")
    assert user.notify.contains("The upload did not go through")
    assert _upload_ids() == []


async def test_a_file_over_the_limit_without_a_declared_length_is_refused_while_stored(
        one_megabyte_limit: None, logged_in_user: User, data_dir: Path) -> None:
    user = logged_in_user
    await _open_imports(user)
    files_before = _stored_files(data_dir)
    boundary = "importer-test-boundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n").encode() + OVERSIZED_CSV + f"\r\n--{boundary}--\r\n".encode()

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 256 * 1024):
            yield body[start:start + 256 * 1024]

    url = user.find(marker="uploader").elements.pop().props["url"]
    response = await user.http_client.post(url, content=chunked(),
                                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 200
    await user.should_see("huge.csv was not stored: The file is over the 1 MB upload limit.", retries=50)
    assert _upload_ids() == []
    assert _stored_files(data_dir) == files_before


async def test_the_history_is_paginated_on_the_server_newest_first(logged_in_user: User) -> None:
    ids = [_add_upload(filename=f"file-{number:02d}.csv", status=UploadStatus.completed.value, total_rows=number,
                       created=number, started_at=utcnow(), finished_at=utcnow()) for number in range(12)]
    user = logged_in_user
    await _open_imports(user)

    assert [row["id"] for row in await _loaded_history(user)] == ids[::-1][:10]
    table = _history(user)
    assert table.pagination["rowsNumber"] == 12
    user.find(marker="history").trigger("request", {"pagination": {"page": 2, "rowsPerPage": 10}})
    await _eventually(lambda: len(table.rows) == 2, "showing page 2")
    assert [row["filename"] for row in table.rows] == ["file-01.csv", "file-00.csv"]
    assert table.pagination == {"page": 2, "rowsPerPage": 10, "rowsNumber": 12}


async def test_cancelling_asks_first(logged_in_user: User) -> None:
    upload_id = _add_upload(status=UploadStatus.processing.value, stage="staging", progress=30,
                            started_at=utcnow(), heartbeat_at=utcnow())
    user = logged_in_user
    await _open_imports(user)
    await user.should_see(marker=f"import-{upload_id}", retries=30)

    user.find(marker="history").trigger("cancel", upload_id)
    await user.should_see("Cancel this import?")
    user.find(marker="confirm-no").click()
    user.find(ui.dialog).trigger("hide")  # what the browser reports once the dialog has closed
    await user.should_not_see("Cancel this import?")
    with session_scope() as session:
        upload = session.get(Upload, upload_id)
        assert upload is not None and not upload.cancel_requested and upload.status == "processing"

    user.find(marker="card-cancel").click()
    await user.should_see("Cancel this import?")
    user.find(marker="confirm-yes").click()
    await user.should_see("Cancelling the import of catalogue.csv")
    with session_scope() as session:
        upload = session.get(Upload, upload_id)
        assert upload is not None and upload.cancel_requested and upload.status == "processing"


async def test_a_failed_import_can_be_retried_to_completion(logged_in_user: User, data_dir: Path) -> None:
    stored = data_dir / "uploads" / "retry-me.csv"
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes((TEST_DATA / "products_100.csv").read_bytes())
    upload_id = _add_upload(filename="retry-me.csv", stored_path=str(stored), size_bytes=stored.stat().st_size,
                            status=UploadStatus.failed.value, error="The worker stopped.", finished_at=utcnow())
    user = logged_in_user
    await _open_imports(user)
    assert (await _loaded_history(user))[0]["can_retry"]

    user.find(marker="history").trigger("retry", upload_id)
    await user.should_see("retry-me.csv is queued again.")
    assert (await _wait_until_finished(upload_id)).status == "completed"
    summary = "100 products: 100 created, 0 updated, 0 duplicates merged / 0 rejected"
    await _eventually(lambda: _card_line(user) == summary, "showing the summary on the import's card")


async def test_details_show_what_was_detected_and_the_rejected_rows(logged_in_user: User) -> None:
    content = ("SKU;Name;Colour;is_active\r\n"
               "ok-1;Café crème;red;yes\r\n"
               ";No SKU here;blue;no\r\n"
               "ok-2;Second;green;maybe\r\n").encode("cp1252")
    user = logged_in_user
    await _open_imports(user)
    await _upload(user, "semicolons.csv", content)
    upload_id = await _the_new_upload_id()
    upload = await _wait_until_finished(upload_id)
    assert (upload.status, upload.encoding, upload.delimiter) == ("completed_with_errors", "cp1252", ";")
    await user.should_see("1 product: 1 created", retries=30)

    user.find(marker="card-details").click()
    await user.should_see(marker="details-dialog")
    await user.should_see("semicolon (;)")
    await user.should_see("Colour")
    await user.should_see("cp1252")
    rejected = user.find(marker="rejected-rows").elements.pop()
    assert isinstance(rejected, ui.table)
    assert [row["row"] for row in rejected.rows] == sorted(row["row"] for row in rejected.rows)
    assert len(rejected.rows) == 2
    assert any(row["value"] == "maybe" for row in rejected.rows)

    user.find(marker="details-download").click()
    report = await user.download.next(timeout=5)
    assert report.status_code == 200
    assert "maybe" in report.text


async def test_a_failed_import_explains_itself(logged_in_user: User) -> None:
    user = logged_in_user
    await _open_imports(user)
    await _upload(user, "no-sku.csv", b"name,description\r\nA thing,with no sku\r\n")
    upload_id = await _the_new_upload_id()
    upload = await _wait_until_finished(upload_id)
    assert upload.status == "failed" and upload.error

    await user.should_see(f"Failed: {upload.error}", retries=30)
    user.find(marker="history").trigger("details", upload_id)
    await user.should_see(marker="details-error")
    await user.should_see(upload.error)
