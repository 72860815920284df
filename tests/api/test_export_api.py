"""`GET /api/products/export/`: the list's filters, streamed CSV, a dated file name."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def catalogue(client: TestClient) -> None:
    for sku, name, description, is_active in [
        ("C-RED", "Red Shirt", "Cotton, \"soft\"", True),
        ("a-blue", "Blue Shirt", "Line 1\r\nLine 2\nLine 3", False),
        ("B-HAT", "@Green Hat", "-5% off", True),
    ]:
        response = client.post("/api/products/", json={"sku": sku, "name": name, "description": description,
                                                       "is_active": is_active})
        assert response.status_code == 201


@pytest.mark.usefixtures("catalogue")
def test_export_is_a_csv_download_of_every_product_in_sku_order(client: TestClient) -> None:
    response = client.get("/api/products/export/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="products-\d{8}-\d{6}\.csv"', response.headers["content-disposition"])
    assert response.content == (
        b'sku,name,description,is_active\r\n'
        b'a-blue,Blue Shirt,"Line 1\r\nLine 2\nLine 3",false\r\n'
        b'B-HAT,@Green Hat,-5% off,true\r\n'
        b'C-RED,Red Shirt,"Cotton, ""soft""",true\r\n'
    )


@pytest.mark.usefixtures("catalogue")
@pytest.mark.parametrize(
    "query, expected",
    [
        ("name=shirt", ["a-blue", "C-RED"]),
        ("is_active=false", ["a-blue"]),
        ("search=hat", ["B-HAT"]),
        ("search=%25", ["B-HAT"]),
        ("sku=nothing", []),
    ],
)
def test_export_applies_the_list_filters(client: TestClient, query: str, expected: list[str]) -> None:
    rows = list(csv.reader(io.StringIO(client.get(f"/api/products/export/?{query}").text, newline="")))
    assert rows[0] == ["sku", "name", "description", "is_active"]
    assert [row[0] for row in rows[1:]] == expected


@pytest.mark.usefixtures("catalogue")
def test_safe_export_neutralises_formulas(client: TestClient) -> None:
    text = client.get("/api/products/export/?safe=true&search=hat").content.decode("utf-8")
    assert text == "\ufeffsku,name,description,is_active\r\nB-HAT,'@Green Hat,'-5% off,true\r\n"


def test_bad_filter_is_422(client: TestClient) -> None:
    response = client.get("/api/products/export/?is_active=maybe")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("is_active:")
