"""Real-browser tests: the app as users run it (`python main.py`), driven by headless Chromium.

One embedded-mode server (SQLite + in-process queue) runs for the whole session in its own
DATA_DIR; every test gets a fresh browser profile. Each test leaves a screenshot in
tests/e2e/screenshots/ and fails when the browser console logged an error.

TEST_BACKEND picks how that server runs: `sqlite` as the embedded app (SQLite and queue
threads in the web process), `postgres` as deployed (PostgreSQL, Redis and a separate
`main.py worker` process). Without Chromium or chromedriver the tests are skipped, unless
REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import requests
from sqlalchemy.engine import URL, make_url

from tests.e2e.browser import Browser

BACKEND = os.environ.get("TEST_BACKEND", "sqlite")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
TEST_DATA = PROJECT_ROOT / "tests" / "data"
E2E_USER = "e2e-admin"
E2E_PASSWORD = "e2e-correct-horse"
SERVER_START_SECONDS = 60


def require_or_skip(reason: str) -> None:
    """CI must not pass by skipping: REQUIRE_BROWSER=1 turns a missing tool into a failure."""
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (REQUIRE_BROWSER=1 demands it)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def app_environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no test harness, NiceGUI or server-mode variables."""
    dropped_prefixes = ("PYTEST_", "NICEGUI_", "TEST_")
    dropped = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "WEBHOOK_RETRY_DELAYS", "WEBHOOK_TIMEOUT"}
    environment = {
        name: value for name, value in os.environ.items()
        if name not in dropped and not name.startswith(dropped_prefixes)
    }
    environment.update(DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **extra)
    return environment


def recreate_database(url: URL) -> None:
    connection = psycopg2.connect(host=url.host, port=url.port, user=url.username, dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{url.database}"')
    connection.close()


def server_mode_settings() -> dict[str, str]:
    """The deployed configuration, with a database and a queue of its own.

    The suite's autouse clean-up empties the suite's database before every test; the
    server's data must outlive that, so it lives in `<TEST_DB_NAME>_live`. Its worker
    outlives the e2e tests too (session scope), so it gets its own Redis database: on the
    suite's queue it would take the later tests' tasks and run them against `_live`.
    """
    if BACKEND != "postgres":
        return {}
    suite_url = make_url(os.environ["DATABASE_URL"])
    url = suite_url.set(database=f"{suite_url.database}_live")
    recreate_database(url)
    return {"DATABASE_URL": url.render_as_string(hide_password=False), "REDIS_URL": _live_redis_url(),
            "SECRET_KEY": "e2e-server-mode-secret"}


def _live_redis_url() -> str:
    suite = os.environ["REDIS_URL"]
    base, _, number = suite.rpartition("/")
    suite_db = int(number or 0)
    return f"{base}/{suite_db - 1 if suite_db > 0 else 1}"


def start_app(environment: dict[str, str], log_path: Path, *arguments: str) -> subprocess.Popen:
    with log_path.open("w") as log_file:
        return subprocess.Popen(
            [sys.executable, "main.py", *arguments], cwd=PROJECT_ROOT, env=environment,
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )


def run_cli(environment: dict[str, str], *arguments: str) -> None:
    completed = subprocess.run(
        [sys.executable, "main.py", *arguments], cwd=PROJECT_ROOT, env=environment,
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, f"main.py {' '.join(arguments)} failed:\n{completed.stderr}"


def wait_until_healthy(process: subprocess.Popen, url: str, log_path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if requests.get(f"{url}/api/health/", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server did not become healthy within {seconds} s:\n{log_path.read_text()[-4000:]}")


def stop_process_group(process: subprocess.Popen) -> None:
    """The server starts queue threads and, in native mode, a window process: stop them all."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass(frozen=True)
class LiveServer:
    url: str
    data_dir: Path
    log_path: Path
    environment: dict[str, str]
    username: str = E2E_USER
    password: str = E2E_PASSWORD

    def api(self, token: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        return session


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    data_dir = Path(tempfile.mkdtemp(prefix="importer-e2e-"))
    environment = app_environment(data_dir, WEBHOOK_ALLOWED_NETWORKS="127.0.0.1", **server_mode_settings())
    run_cli(environment, "createuser", E2E_USER, "--password", E2E_PASSWORD)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = data_dir / "server.log"
    processes = [start_app(environment, log_path, "--port", str(port))]
    if BACKEND == "postgres":
        processes.append(start_app(environment, data_dir / "worker.log", "worker"))
    try:
        wait_until_healthy(processes[0], url, log_path, SERVER_START_SECONDS)
        yield LiveServer(url=url, data_dir=data_dir, log_path=log_path, environment=environment)
    finally:
        for process in processes:
            stop_process_group(process)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        require_or_skip("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    return chromium, chromedriver


@pytest.fixture(scope="session")
def api_token(live_server: LiveServer) -> str:
    """A REST token for setting up and checking state beside the browser."""
    completed = subprocess.run(
        [sys.executable, "main.py", "apitoken", live_server.username], cwd=PROJECT_ROOT,
        env=live_server.environment, capture_output=True, text=True, timeout=120, check=True,
    )
    return completed.stdout.strip().splitlines()[-1]


@pytest.fixture
def api(live_server: LiveServer, api_token: str) -> Iterator[requests.Session]:
    with live_server.api(api_token) as session:
        yield session


FINISHED = {"completed", "completed_with_errors", "failed", "cancelled"}
IMPORT_SECONDS = 120


def wait_for_upload(api: requests.Session, url: str, upload_id: int) -> dict:
    deadline = time.monotonic() + IMPORT_SECONDS
    while time.monotonic() < deadline:
        upload = api.get(f"{url}/api/uploads/{upload_id}/", timeout=10).json()
        if upload["status"] in FINISHED:
            return upload
        time.sleep(0.2)
    pytest.fail(f"upload {upload_id} did not finish within {IMPORT_SECONDS} s")


def import_through_api(api: requests.Session, url: str, path: Path) -> dict:
    """Set-up beside the browser: import a file over REST and wait for the outcome."""
    with path.open("rb") as handle:
        response = api.post(f"{url}/api/uploads/", files={"file": (path.name, handle, "text/csv")}, timeout=60)
    assert response.status_code == 202, response.text
    return wait_for_upload(api, url, response.json()["id"])


def product_count(api: requests.Session, url: str, **filters: str) -> int:
    response = api.get(f"{url}/api/products/", params={**filters, "page_size": 1}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["count"]


@pytest.fixture
def empty_catalogue(live_server: LiveServer, api: requests.Session) -> None:
    """The server lives for the session: tests that count products start from none."""
    response = api.delete(f"{live_server.url}/api/products/bulk-delete/", timeout=60)
    assert response.status_code == 200, response.text


@pytest.fixture
def catalogue_1000(empty_catalogue: None, live_server: LiveServer, api: requests.Session) -> None:
    """The 999 products of the reference file's first 1000 rows (one SKU repeats)."""
    upload = import_through_api(api, live_server.url, TEST_DATA / "products_1000.csv")
    assert upload["status"] == "completed", upload
    assert product_count(api, live_server.url) == 999


@pytest.fixture
def browser(request: pytest.FixtureRequest, chromium_paths: tuple[str, str],
            live_server: LiveServer) -> Iterator[Browser]:
    chromium, chromedriver = chromium_paths
    profile = Path(tempfile.mkdtemp(prefix="e2e-chromium-"))
    downloads = profile / "downloads"
    downloads.mkdir()
    session = Browser.start(chromium, chromedriver, live_server.url, profile, downloads,
                            screenshot_prefix=SCREENSHOTS / request.node.name)
    try:
        yield session
        session.assert_no_console_errors()
    finally:
        session.screenshot()
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def logged_in(browser: Browser, live_server: LiveServer) -> Browser:
    browser.log_in(live_server.username, live_server.password)
    return browser
