"""Crash safety with a real `python main.py worker` process: killed with SIGKILL mid-import,
or cut off by a restart of the PostgreSQL server itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from importer.db import get_engine
from importer.models import Upload
from tasks.imports import enqueue_import
from tests.importer.ingest_support import catalogue, expected_from_csv, fetch, generated_file, store, wait_for

ROOT = Path(__file__).resolve().parents[2]
STALE_SECONDS = "2"


class WorkerProcess:
    """`python main.py worker` in its own process group, with this test run's settings."""

    def __init__(self, log: Path) -> None:
        env = {**os.environ, "STALE_IMPORT_SECONDS": STALE_SECONDS}
        with log.open("ab") as output:  # a file, not a pipe: a full pipe would block the worker's logging
            self.process = subprocess.Popen([sys.executable, "main.py", "worker", "-w", "2"], cwd=ROOT, env=env,
                                            start_new_session=True, stdout=output, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.kill()


@pytest.mark.parametrize("stage", ["staging", "merging"])
def test_worker_killed_mid_import_resumes_and_ends_exactly_right(
        workers: list[WorkerProcess], stage: str, tmp_path: Path) -> None:
    path = generated_file(30_000)
    upload = store(path.read_bytes())

    def _upload() -> Upload:
        return fetch(upload.id)  # type: ignore[arg-type]

    workers.append(WorkerProcess(tmp_path / "worker.log"))
    enqueue_import(upload.id)  # type: ignore[arg-type]
    if stage == "staging":
        checkpoint = wait_for(lambda: _upload().stage == "staging" and 0 < _upload().bytes_read < upload.size_bytes
                              and _upload(), timeout=60, interval=0.005)
    else:
        checkpoint = wait_for(lambda: _upload().stage == "merging" and _upload(), timeout=60, interval=0.005)
    workers[0].kill()
    interrupted = _upload()
    assert interrupted.status == "processing" and interrupted.stage == stage
    assert interrupted.bytes_read >= checkpoint.bytes_read
    assert catalogue() == {}, "nothing may be visible before the merge commits"

    workers.append(WorkerProcess(tmp_path / "worker.log"))
    done = _finished(upload.id, tmp_path / "worker.log", timeout=60)  # type: ignore[arg-type]
    _assert_imported_exactly(done, path, 30_000)
    assert done.attempts == 2


def _finished(upload_id: int, worker_log: Path, timeout: float) -> Upload:
    """The upload once it has completed or failed; the worker's log if it never does."""
    try:
        return wait_for(lambda: (upload := fetch(upload_id)).status in ("completed", "failed") and upload,
                        timeout=timeout, interval=0.1)
    except AssertionError as exc:
        raise AssertionError(worker_log.read_text()[-3000:]) from exc


def _assert_imported_exactly(done: Upload, path: Path, rows: int) -> None:
    assert done.status == "completed", done.error
    expected = expected_from_csv(path)
    assert (done.processed_rows, done.created, done.updated, done.failed_rows) == (rows, len(expected), 0, 0)
    assert catalogue() == expected


def _restart_postgres() -> None:
    """The server as installed on this machine (Debian's cluster tools); fast shutdown ends every session."""
    clusters = sorted(os.listdir("/etc/postgresql"))
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1], "main", "restart"], check=True,
                   capture_output=True, timeout=120)
    get_engine().dispose()  # this process's pooled connections died with the server


@pytest.mark.skipif(os.environ.get("TEST_RESTART_POSTGRES") != "1" or get_engine().dialect.name != "postgresql",
                    reason="restarts the PostgreSQL server: set TEST_RESTART_POSTGRES=1 (CI does)")
@pytest.mark.parametrize("stage", ["staging", "merging"])
def test_postgres_restarted_mid_import_resumes_and_ends_exactly_right(
        workers: list[WorkerProcess], stage: str, tmp_path: Path) -> None:
    assert shutil.which("pg_ctlcluster"), "TEST_RESTART_POSTGRES=1 needs Debian's pg_ctlcluster"
    path = generated_file(200_000)
    upload = store(path.read_bytes())

    def _upload() -> Upload:
        return fetch(upload.id)  # type: ignore[arg-type]

    workers.append(WorkerProcess(tmp_path / "worker.log"))
    enqueue_import(upload.id)  # type: ignore[arg-type]
    wait_for(lambda: _upload().stage == stage and (stage == "merging" or _upload().bytes_read > 0),
             timeout=120, interval=0.005)
    _restart_postgres()
    done = _finished(upload.id, tmp_path / "worker.log", timeout=120)  # type: ignore[arg-type]
    log = (tmp_path / "worker.log").read_text()
    assert "resuming from the checkpoint" in log, "the restart must have cut the import off"
    _assert_imported_exactly(done, path, 200_000)
    assert done.attempts == 1, "the same worker resumes; nobody else had to take over"
