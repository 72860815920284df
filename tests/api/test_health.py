"""`/api/health/`: open to all; 503 naming the part that is down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

PROJECT = Path(__file__).resolve().parents[2]
UNREACHABLE_POSTGRES = "postgresql://postgres@127.0.0.1:1/nowhere"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
SERVER_MODE = os.environ.get("TEST_BACKEND", "sqlite") == "postgres"
HEALTH_PROBE = """
import json
from fastapi import FastAPI
from fastapi.testclient import TestClient
import api
app = FastAPI()
api.register(app)
response = TestClient(app).get("/api/health/")
print(json.dumps({"status_code": response.status_code, "body": response.json()}))
"""


def test_health_needs_no_login_and_reports_ok(anon_client: TestClient) -> None:
    response = anon_client.get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "queue": "ok"}


def _health_in_a_fresh_process(tmp_path: Path, **environment: str) -> dict:  # type: ignore[type-arg]
    """Settings are read once per process, so a broken configuration needs its own process."""
    env = {**os.environ, "DATA_DIR": str(tmp_path), "SECRET_KEY": "health-test", **environment}
    result = subprocess.run([sys.executable, "-c", HEALTH_PROBE], cwd=PROJECT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_database_down_is_503(tmp_path: Path) -> None:
    database_url = UNREACHABLE_POSTGRES if SERVER_MODE else f"sqlite:///{tmp_path / 'missing-dir' / 'importer.db'}"
    answer = _health_in_a_fresh_process(tmp_path, DATABASE_URL=database_url)
    assert answer == {"status_code": 503, "body": {"status": "degraded", "database": "down", "queue": "ok"}}


@pytest.mark.skipif(not SERVER_MODE, reason="the Redis queue is server mode only")
def test_queue_down_is_503(tmp_path: Path) -> None:
    answer = _health_in_a_fresh_process(tmp_path, REDIS_URL=UNREACHABLE_REDIS)
    assert answer == {"status_code": 503, "body": {"status": "degraded", "database": "ok", "queue": "down"}}
