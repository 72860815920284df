"""`/api/uploads/`: multipart upload streamed to disk, the size limit, listing, cancel, re-process, errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest

from importer.config import get_settings
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
    stored = list((data_dir / "uploads").glob("*.csv"))
    assert (DATA / "products_1000.csv").read_bytes() in [path.read_bytes() for path in stored]
    done = wait_for(lambda: _finished(client, body["id"]))
    assert (done["status"], done["created"], done["total_rows"], done["progress"]) == ("completed", 999, 1000, 100.0)
    assert len(catalogue()) == 999


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
