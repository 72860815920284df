"""The command line as scripts use it: real processes, a fresh DATA_DIR or database each time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKEND

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """A fresh embedded DATA_DIR, or the test PostgreSQL database in server mode."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "NICEGUI"))}
    env["DATA_DIR"] = str(tmp_path / "data")
    return env


def test_createuser_then_apitoken_prints_token_last(cli_env: dict[str, str], anon_client) -> None:  # type: ignore[no-untyped-def]
    created = run_cli("createuser", "alice", "--password", "s3cret-pass", env=cli_env)
    assert created.returncode == 0, created.stderr
    issued = run_cli("apitoken", "alice", env=cli_env)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("pi_") and " " not in token
    if BACKEND == "postgres":  # the same database as this test process: the token works here
        response = anon_client.get("/api/products/", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text


def test_createuser_prompts_for_password(cli_env: dict[str, str]) -> None:
    # getpass reads from the terminal; without one it falls back to stdin.
    result = run_cli("createuser", "bob", env=cli_env, stdin="long-enough-pw\nlong-enough-pw\n")
    assert result.returncode == 0, result.stderr


def test_createuser_rejects_duplicates_and_short_passwords(cli_env: dict[str, str]) -> None:
    assert run_cli("createuser", "carol", "--password", "long-enough", env=cli_env).returncode == 0
    duplicate = run_cli("createuser", "carol", "--password", "long-enough", env=cli_env)
    assert duplicate.returncode == 1 and "taken" in duplicate.stderr
    short = run_cli("createuser", "dave", "--password", "short", env=cli_env)
    assert short.returncode == 1 and "at least 8" in short.stderr


def test_apitoken_for_unknown_user_fails_clearly(cli_env: dict[str, str]) -> None:
    result = run_cli("apitoken", "nobody", env=cli_env)
    assert result.returncode == 1
    assert "no user named 'nobody'" in result.stderr


def test_migrate_on_a_fresh_data_dir(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("migrate", env=cli_env)
    assert result.returncode == 0, result.stderr
    if BACKEND == "sqlite":
        assert (tmp_path / "data" / "importer.db").exists()


def test_server_mode_without_secret_key_refuses_in_one_line(cli_env: dict[str, str]) -> None:
    cli_env.pop("SECRET_KEY", None)
    cli_env["REDIS_URL"] = "redis://127.0.0.1:6379/15"
    result = run_cli("migrate", env=cli_env)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: SECRET_KEY must be set in server mode (DATABASE_URL or REDIS_URL is set)"
