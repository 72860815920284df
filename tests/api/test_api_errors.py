"""Unknown API paths: authentication comes first, as for every other /api/ path
(the authenticated 404 is in test_auth_api.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_unknown_api_path_asks_anonymous_callers_to_authenticate(anon_client: TestClient) -> None:
    response = anon_client.delete("/api/secret-admin/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication required."}

