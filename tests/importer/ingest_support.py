"""Helpers shared by the import tests: run an import of given bytes, read the catalogue back."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select

from importer import jobs
from importer.db import session_scope
from importer.models import Product, Upload, UploadError

T = TypeVar("T")
DATA = Path(__file__).resolve().parent.parent / "data"


def store(data: bytes, filename: str = "products.csv") -> Upload:
    """A pending upload of these bytes, stored as the API would store it."""
    stored = jobs.store_upload([data[i:i + 65536] for i in range(0, len(data), 65536)], filename)
    with session_scope() as session:
        return jobs.create_upload(session, filename=filename, stored_path=stored.path,
                                  size_bytes=stored.size_bytes, user_id=None)


def run_bytes(data: bytes, filename: str = "products.csv") -> Upload:
    """Import in this process, the way the queue task does, and return the finished upload."""
    upload = store(data, filename)
    jobs.run_import(upload.id)  # type: ignore[arg-type]
    return fetch(upload.id)  # type: ignore[arg-type]


def fetch(upload_id: int) -> Upload:
    with session_scope() as session:
        return jobs.get_upload(session, upload_id)


def errors_of(upload_id: int) -> list[tuple[int, str, str, str]]:
    with session_scope() as session:
        rows = session.execute(select(UploadError).where(UploadError.upload_id == upload_id)
                               .order_by(UploadError.row_number, UploadError.id)).scalars()
        return [(error.row_number, error.column, error.value, error.message) for error in rows]


def catalogue() -> dict[str, tuple[str, str, str, bool]]:
    """sku_key -> (sku, name, description, is_active)."""
    with session_scope() as session:
        return {product.sku_key: (product.sku, product.name, product.description, product.is_active)
                for product in session.execute(select(Product)).scalars()}


def expected_from_csv(path: Path) -> dict[str, tuple[str, str, str, bool]]:
    """What a correct import of a clean name,sku,description file gives: the last row of each SKU wins."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {row["sku"].strip().casefold(): (row["sku"].strip(), row["name"].strip(), row["description"], True)
            for row in rows}


def csv_bytes(rows: list[list[str]], *, delimiter: str = ",", newline: str = "\r\n", encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=newline).writerows(rows)
    return buffer.getvalue().encode(encoding)


@lru_cache(maxsize=4)
def generated_file(rows: int, seed: int = 7) -> Path:
    """A reference-shaped file from bench/datagen.py, generated once per test run."""
    from bench.datagen import write_products_csv

    from importer.config import get_settings

    return write_products_csv(get_settings().data_dir / f"generated-{rows}-{seed}.csv", rows, seed)


def wait_for(condition: Callable[[], T], timeout: float = 20.0, interval: float = 0.02) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
