"""Settings: which mode the environment selects, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from importer.config import ConfigError, load_settings

SERVER_VARS = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "HOST", "PORT", "MAX_UPLOAD_MB", "WEBHOOK_ALLOWED_NETWORKS")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in SERVER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


def test_embedded_defaults(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'importer.db'}"
    assert settings.redis_url is None
    assert not settings.is_server_mode
    assert (settings.host, settings.port, settings.max_upload_mb) == ("127.0.0.1", 8080, 1024)


def test_embedded_secret_is_generated_once_and_kept(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first = load_settings().secret_key
    assert len(first) >= 32
    assert load_settings().secret_key == first
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("variable", ["DATABASE_URL", "REDIS_URL"])
def test_server_mode_requires_secret_key(env: pytest.MonkeyPatch, variable: str) -> None:
    env.setenv(variable, "postgresql://db/x" if variable == "DATABASE_URL" else "redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        load_settings()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
    ],
)
def test_heroku_style_urls_are_accepted(env: pytest.MonkeyPatch, given: str, expected: str) -> None:
    env.setenv("DATABASE_URL", given)
    env.setenv("SECRET_KEY", "s")
    settings = load_settings()
    assert settings.database_url == expected
    assert settings.is_server_mode
    assert settings.host == "0.0.0.0"


def test_bad_numbers_are_named(env: pytest.MonkeyPatch) -> None:
    env.setenv("MAX_UPLOAD_MB", "lots")
    with pytest.raises(ConfigError, match="MAX_UPLOAD_MB"):
        load_settings()


def test_allowed_networks_and_retry_delays(env: pytest.MonkeyPatch) -> None:
    env.setenv("WEBHOOK_ALLOWED_NETWORKS", " 127.0.0.1 , 10.0.0.0/8,,")
    env.setenv("WEBHOOK_RETRY_DELAYS", "0, 1.5, 3")
    settings = load_settings()
    assert settings.webhook_allowed_networks == ("127.0.0.1", "10.0.0.0/8")
    assert settings.webhook_retry_delays == (0.0, 1.5, 3.0)


def test_bad_webhook_timeout_is_named(env: pytest.MonkeyPatch) -> None:
    env.setenv("WEBHOOK_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="WEBHOOK_TIMEOUT must be a number of seconds"):
        load_settings()


def test_debug_turns_on_the_apps_debug_logging(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import subprocess
    import sys

    env.setenv("DEBUG", "1")
    probe = ("import logging, main; main._configure_logging(); "
             "print(logging.getLogger('importer.ingest').isEnabledFor(logging.DEBUG))")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
