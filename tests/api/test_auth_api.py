"""Every API endpoint but health needs a valid token (or a logged-in UI session); failures are JSON 401."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from importer import auth
from importer.db import session_scope
from importer.models import ApiToken

PROTECTED = [
    ("GET", "/api/products/"),
    ("POST", "/api/products/"),
    ("DELETE", "/api/products/bulk-delete/"),
    ("GET", "/api/products/export/"),
    ("GET", "/api/products/1/"),
    ("PUT", "/api/products/1/"),
    ("PATCH", "/api/products/1/"),
    ("DELETE", "/api/products/1/"),
]


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("method, path", PROTECTED)
@pytest.mark.parametrize(
    "header, detail",
    [
        (None, "Authentication required."),
        ("Bearer pi_not-a-real-token", "Invalid or revoked API token."),
        ("Bearer ", "Use 'Authorization: Bearer <token>'."),
        ("Basic YWRtaW46cGFzc3dvcmQ=", "Use 'Authorization: Bearer <token>'."),
        ("pi_token-without-scheme", "Use 'Authorization: Bearer <token>'."),
    ],
)
def test_requests_without_a_valid_token_are_401_json(
    anon_client: TestClient, method: str, path: str, header: str | None, detail: str
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = anon_client.request(method, path, headers=headers, json={"sku": "x", "name": "y"})
    assert response.status_code == 401
    assert response.json() == {"detail": detail}
    assert response.headers["www-authenticate"] == "Bearer"


def test_nothing_changes_without_auth(anon_client: TestClient, client: TestClient) -> None:
    client.post("/api/products/", json={"sku": "KEEP", "name": "Kept"})
    anon_client.delete("/api/products/bulk-delete/")
    anon_client.post("/api/products/", json={"sku": "NEW", "name": "New"})
    assert [product["sku"] for product in client.get("/api/products/").json()["results"]] == ["KEEP"]


def test_a_valid_token_works_with_any_scheme_case(anon_client: TestClient, admin: dict) -> None:  # type: ignore[type-arg]
    response = anon_client.get("/api/products/", headers={"Authorization": f"bearer {admin['token']}"})
    assert response.status_code == 200


def test_token_use_is_recorded(client: TestClient) -> None:
    client.get("/api/products/")
    with session_scope() as session:
        assert session.execute(select(ApiToken.last_used_at)).scalar_one() is not None


def test_token_use_is_recorded_even_when_the_request_fails(client: TestClient) -> None:
    """The touch is committed on its own, not with (or rolled back with) the request's work."""
    assert client.get("/api/products/999/").status_code == 404
    with session_scope() as session:
        assert session.execute(select(ApiToken.last_used_at)).scalar_one() is not None


def test_tokens_of_a_deleted_user_stop_working(client: TestClient, admin: dict) -> None:  # type: ignore[type-arg]
    with session_scope() as session:
        session.delete(auth.get_user(session, admin["id"]))
    assert client.get("/api/products/").status_code == 401


def test_unknown_api_path_is_json_404(client: TestClient) -> None:
    response = client.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No API endpoint at /api/nothing-here/."}


def test_openapi_schema_lists_the_product_endpoints(anon_client: TestClient) -> None:
    paths = anon_client.get("/openapi.json").json()["paths"]
    assert {"/api/products/", "/api/products/{product_id}/", "/api/products/bulk-delete/",
            "/api/products/export/", "/api/health/"} <= set(paths)
