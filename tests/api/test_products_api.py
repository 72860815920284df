"""`/api/products/` over HTTP, on the configured database."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from importer.db import session_scope
from importer.models import OutboxEvent

PRODUCT_FIELDS = {"id", "sku", "name", "description", "is_active", "created_at", "updated_at"}


def _post(client: TestClient, sku: str, name: str = "Widget", **fields: Any) -> dict[str, Any]:
    response = client.post("/api/products/", json={"sku": sku, "name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def _event_types() -> list[str]:
    with session_scope() as session:
        return list(session.execute(select(OutboxEvent.event_type).order_by(OutboxEvent.id)).scalars())


def _skus(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [product["sku"] for product in response.json()["results"]]


def test_create_answers_201_with_the_product(client: TestClient) -> None:
    product = _post(client, " SKU-1 ", "Name", description="Line 1\nLine 2", is_active=False)
    assert set(product) == PRODUCT_FIELDS
    assert (product["sku"], product["name"], product["description"], product["is_active"]) == (
        "SKU-1", "Name", "Line 1\nLine 2", False)
    assert client.get(f"/api/products/{product['id']}/").json() == product


def test_create_defaults(client: TestClient) -> None:
    product = _post(client, "SKU-1")
    assert (product["description"], product["is_active"]) == ("", True)


@pytest.mark.parametrize("first, second", [("abc-1", "ABC-1"), ("ÜBER-1", "über-1")])
def test_duplicate_sku_in_other_letter_case_is_409(client: TestClient, first: str, second: str) -> None:
    _post(client, first)
    response = client.post("/api/products/", json={"sku": second, "name": "Other"})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert client.get("/api/products/").json()["count"] == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"sku": "", "name": "x"}, "sku"),
        ({"sku": "   ", "name": "x"}, "sku"),
        ({"sku": "s", "name": ""}, "name"),
        ({"sku": "s" * 101, "name": "x"}, "sku"),
        ({"sku": "s", "name": "n" * 256}, "name"),
        ({"name": "x"}, "sku"),
        ({"sku": "s"}, "name"),
        ({"sku": "s", "name": "x", "is_active": "maybe"}, "is_active"),
    ],
)
def test_bad_product_is_422_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    response = client.post("/api/products/", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}:")


def test_longest_allowed_fields_are_accepted(client: TestClient) -> None:
    _post(client, "s" * 100, "n" * 255)


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post("/api/products/", content=b'{"sku": "x",', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Malformed JSON in the request body."}


def test_put_replaces_and_patch_changes_only_what_it_names(client: TestClient) -> None:
    product = _post(client, "P-1", "Old", description="Described", is_active=False)
    url = f"/api/products/{product['id']}/"

    patched = client.patch(url, json={"name": "Patched"}).json()
    assert (patched["name"], patched["description"], patched["is_active"]) == ("Patched", "Described", False)

    put = client.put(url, json={"sku": "p-1", "name": "Put"})
    assert put.status_code == 200
    assert (put.json()["sku"], put.json()["description"], put.json()["is_active"]) == ("p-1", "", True)
    assert put.json()["updated_at"] >= patched["updated_at"] > product["updated_at"]

    assert client.put(url, json={"name": "No SKU"}).status_code == 422
    assert client.patch(url, json={"name": ""}).status_code == 422
    for field in ("sku", "name", "description", "is_active"):
        response = client.patch(url, json={field: None})
        assert (response.status_code, response.json()) == (422, {"detail": f"{field}: must not be null"})
    assert client.patch(url, json={}).json()["name"] == "Put"


def test_update_into_another_sku_is_409(client: TestClient) -> None:
    _post(client, "A-1")
    other = _post(client, "B-1")
    for method in ("put", "patch"):
        response = client.request(method, f"/api/products/{other['id']}/", json={"sku": "a-1", "name": "x"})
        assert response.status_code == 409, method


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_missing_product_is_404(client: TestClient, method: str) -> None:
    response = client.request(method, "/api/products/999/", json={"sku": "x", "name": "y"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Product 999 not found."}


def test_non_numeric_id_is_422(client: TestClient) -> None:
    assert client.get("/api/products/abc/").status_code == 422


def test_delete_is_204_and_gone(client: TestClient) -> None:
    product = _post(client, "D-1")
    response = client.delete(f"/api/products/{product['id']}/")
    assert (response.status_code, response.content) == (204, b"")
    assert client.get(f"/api/products/{product['id']}/").status_code == 404


def test_bulk_delete_counts_and_writes_one_event(client: TestClient) -> None:
    for number in range(5):
        _post(client, f"B-{number}")
    response = client.delete("/api/products/bulk-delete/")
    assert response.json() == {"deleted": 5}
    assert client.get("/api/products/").json()["count"] == 0
    assert _event_types() == ["product_created"] * 5 + ["all_products_deleted"]


def test_every_change_writes_one_event(client: TestClient) -> None:
    product = _post(client, "E-1")
    client.patch(f"/api/products/{product['id']}/", json={"name": "x"})
    client.put(f"/api/products/{product['id']}/", json={"sku": "E-1", "name": "y"})
    client.post("/api/products/", json={"sku": "e-1", "name": "duplicate"})
    client.delete(f"/api/products/{product['id']}/")
    assert _event_types() == ["product_created", "product_updated", "product_updated", "product_deleted"]


@pytest.fixture
def catalogue(client: TestClient) -> None:
    _post(client, "RED-1", "Red Shirt", description="Cotton, 100% pure")
    _post(client, "BLUE-2", "Blue Shirt", description="Linen_blend", is_active=False)
    _post(client, "GREEN-3", "Green Hat", description="Wool hat")
    _post(client, "ÜBER-4", "Über Jacke", description="Warm")


@pytest.mark.usefixtures("catalogue")
@pytest.mark.parametrize(
    "query, expected",
    [
        ("sku=red", ["RED-1"]),
        ("name=SHIRT", ["RED-1", "BLUE-2"]),
        ("description=WOOL", ["GREEN-3"]),
        ("is_active=false", ["BLUE-2"]),
        ("is_active=true&name=shirt", ["RED-1"]),
        ("search=hat", ["GREEN-3"]),
        ("search=blue-", ["BLUE-2"]),
        ("description=%25", ["RED-1"]),
        ("description=_", ["BLUE-2"]),
        ("search=n_b", ["BLUE-2"]),
        ("name=%25", []),
        ("sku=über", ["ÜBER-4"]),
        ("search=ÜBER jacke", ["ÜBER-4"]),
        ("ordering=-sku&is_active=true", ["ÜBER-4", "RED-1", "GREEN-3"]),
        ("ordering=name", ["BLUE-2", "GREEN-3", "RED-1", "ÜBER-4"]),
        ("ordering=-id", ["ÜBER-4", "GREEN-3", "BLUE-2", "RED-1"]),
        ("sku=", ["RED-1", "BLUE-2", "GREEN-3", "ÜBER-4"]),
    ],
)
def test_list_filters_and_ordering(client: TestClient, query: str, expected: list[str]) -> None:
    response = client.get(f"/api/products/?{query}")
    assert _skus(response) == expected
    assert response.json()["count"] == len(expected)


@pytest.mark.usefixtures("catalogue")
@pytest.mark.parametrize(
    "query, field",
    [
        ("is_active=maybe", "is_active"),
        ("ordering=bogus", "ordering"),
        ("ordering=-password_hash", "ordering"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("page_size=0", "page_size"),
        ("page_size=501", "page_size"),
    ],
)
def test_bad_list_parameters_are_422_naming_the_field(client: TestClient, query: str, field: str) -> None:
    response = client.get(f"/api/products/?{query}")
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}:")


@pytest.mark.usefixtures("catalogue")
def test_pagination_links(client: TestClient) -> None:
    first = client.get("/api/products/?page_size=1&ordering=sku&name=shirt").json()
    assert first["count"] == 2
    assert first["previous"] is None
    assert first["next"] == "http://testserver/api/products/?page_size=1&ordering=sku&name=shirt&page=2"
    second = client.get(first["next"]).json()
    assert [product["sku"] for product in second["results"]] == ["RED-1"]
    assert second["next"] is None
    assert second["previous"] == "http://testserver/api/products/?page_size=1&ordering=sku&name=shirt"
    assert client.get(second["previous"]).json() == first


@pytest.mark.usefixtures("catalogue")
def test_page_past_the_end_is_404(client: TestClient) -> None:
    assert client.get("/api/products/?page_size=2&page=2").status_code == 200
    response = client.get("/api/products/?page_size=2&page=3")
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}


def test_page_size_bounds_and_default(client: TestClient) -> None:
    for number in range(51):
        _post(client, f"S-{number:02}")
    assert len(client.get("/api/products/").json()["results"]) == 50
    assert len(client.get("/api/products/?page_size=500").json()["results"]) == 51
    assert len(client.get("/api/products/?page_size=1").json()["results"]) == 1


def test_empty_catalogue_lists_an_empty_first_page(client: TestClient) -> None:
    assert client.get("/api/products/").json() == {"count": 0, "next": None, "previous": None, "results": []}
