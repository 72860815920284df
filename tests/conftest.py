"""Test set-up shared by every suite.

The backend is chosen once per pytest run by TEST_BACKEND: `sqlite` (embedded mode:
SQLite file + SqliteHuey, the default) or `postgres` (server mode: a real PostgreSQL
database and a real Redis). test.sh runs the suite once for each. When the postgres
backend is asked for and a service is not reachable, the run fails; it never skips.
test.sh leaves the `ui` and `e2e` tests (one web process in embedded mode) to the first pass.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

BACKEND = os.environ.get("TEST_BACKEND", "sqlite")
TEST_DATA = Path(__file__).parent / "data"
_DATA_DIR = Path(tempfile.mkdtemp(prefix="importer-test-"))


def _configure_environment() -> None:
    """Runs before any app module is imported: settings are read from here on."""
    for name in ("DATABASE_URL", "REDIS_URL", "WEBHOOK_ALLOWED_NETWORKS", "MAX_UPLOAD_MB"):
        os.environ.pop(name, None)
    os.environ["DATA_DIR"] = str(_DATA_DIR)
    os.environ["SECRET_KEY"] = "test-secret-key"
    os.environ.setdefault("WEBHOOK_RETRY_DELAYS", "0,0.2,0.4")
    os.environ.setdefault("WEBHOOK_TIMEOUT", "2")
    if BACKEND == "postgres":
        host = os.environ.get("TEST_PG_HOST", "127.0.0.1")
        db_name = os.environ.get("TEST_DB_NAME", "importer_test")
        os.environ["DATABASE_URL"] = f"postgresql://postgres@{host}:5432/{db_name}"
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:6379/{os.environ.get('TEST_REDIS_DB', '15')}"
    elif BACKEND != "sqlite":
        raise RuntimeError(f"TEST_BACKEND must be sqlite or postgres, not {BACKEND!r}")


_configure_environment()
os.environ.setdefault("NICEGUI_STORAGE_PATH", str(_DATA_DIR / ".nicegui"))

pytest_plugins = ["nicegui.testing.user_plugin", "tests.webhook_receivers"]


def _recreate_postgres_database() -> None:
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["DATABASE_URL"])
    try:
        connection = psycopg2.connect(host=url.host, port=url.port, user=url.username, dbname="postgres")
    except psycopg2.OperationalError as exc:
        pytest.exit(f"PostgreSQL is required for TEST_BACKEND=postgres and is not reachable: {exc}", returncode=3)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (url.database,))
        cursor.execute(f'DROP DATABASE IF EXISTS "{url.database}"')
        cursor.execute(f'CREATE DATABASE "{url.database}"')
    connection.close()


def _check_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(os.environ["REDIS_URL"]).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis is required for TEST_BACKEND=postgres and is not reachable: {exc}", returncode=3)


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[None]:
    if BACKEND == "postgres":
        _recreate_postgres_database()
        _check_redis()
    from importer.db import migrate

    migrate()
    yield


def _truncate_all() -> None:
    from sqlalchemy import text
    from sqlmodel import SQLModel

    from importer.db import get_engine

    engine = get_engine()
    tables = [table.name for table in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))
            has_sequences = connection.execute(
                text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first()
            if has_sequences:
                connection.execute(text("DELETE FROM sqlite_sequence"))


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    """Every test starts with empty tables and an empty queue."""
    from importer.products import count_cache
    from tasks import huey

    _truncate_all()
    huey.flush()
    count_cache.clear()
    yield


@pytest.fixture
def session():  # type: ignore[no-untyped-def]
    from importer.db import session_scope

    with session_scope() as db_session:
        yield db_session


@pytest.fixture
def api_app():  # type: ignore[no-untyped-def]
    """The REST API alone, on a plain FastAPI app: fast, and no browser session involved."""
    from fastapi import FastAPI

    import api

    app = FastAPI()
    api.register(app)
    return app


@pytest.fixture
def anon_client(api_app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(api_app) as client:
        yield client


@pytest.fixture
def admin():  # type: ignore[no-untyped-def]
    from importer import auth
    from importer.db import session_scope

    with session_scope() as db_session:
        user = auth.create_user(db_session, "admin", "correct-horse-battery")
        token = auth.create_token(db_session, user)
    return {"username": "admin", "password": "correct-horse-battery", "token": token, "id": user.id}


@pytest.fixture
def client(api_app, admin):  # type: ignore[no-untyped-def]
    """An API client authenticated with a Bearer token."""
    from fastapi.testclient import TestClient

    with TestClient(api_app, headers={"Authorization": f"Bearer {admin['token']}"}) as test_client:
        yield test_client


@pytest.fixture
def worker() -> Iterator[None]:
    """A real queue consumer (threads in this process) for the length of one test."""
    from tasks.consumer import start_embedded_consumer, stop_embedded_consumer

    consumer = start_embedded_consumer(workers=2)
    yield
    stop_embedded_consumer(consumer)
    # Huey's threads only see the stop flag between tasks; one still waiting on the queue
    # would otherwise take the next test's first task, as if a worker were running.
    for thread in [consumer.scheduler, *(thread for _, thread in consumer.worker_threads)]:
        thread.join(timeout=15)


@pytest.fixture
def data_dir() -> Path:
    return _DATA_DIR
