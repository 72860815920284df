"""Settings read once from the environment; they decide between embedded and server mode.

Embedded mode (nothing set) keeps everything in one SQLite file and a SQLite-backed queue
under DATA_DIR. Server mode is chosen by DATABASE_URL and/or REDIS_URL and then demands a
SECRET_KEY, because several processes must agree on it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar


class ConfigError(RuntimeError):
    """The environment does not describe a runnable configuration."""


Number = TypeVar("Number", int, float)
DEFAULT_WEBHOOK_RETRY_DELAYS = (0, 5, 30, 120, 600, 2700)


def _normalise_database_url(url: str) -> str:
    """Heroku hands out `postgres://`, which SQLAlchemy 2 no longer accepts."""
    if url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def _number(name: str, default: Number, kind: type[Number], meaning: str) -> Number:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be {meaning}, got {raw!r}") from exc


def _delays(raw: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"WEBHOOK_RETRY_DELAYS must be comma-separated seconds, got {raw!r}") from exc
    if not delays:
        raise ConfigError("WEBHOOK_RETRY_DELAYS must list at least one delay")
    return delays


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str | None
    secret_key: str
    host: str
    port: int
    debug: bool
    max_upload_mb: int
    webhook_allowed_networks: tuple[str, ...]
    webhook_retry_delays: tuple[float, ...] = DEFAULT_WEBHOOK_RETRY_DELAYS
    webhook_timeout: float = 10.0
    stale_import_seconds: int = 60
    upload_retention_days: int = 7
    merge_memory_mb: int = 1024

    @property
    def is_server_mode(self) -> bool:
        return not self.database_url.startswith("sqlite") or self.redis_url is not None

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def queue_path(self) -> Path:
        return self.data_dir / "queue.db"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


def _embedded_secret(data_dir: Path) -> str:
    """Generated once and kept beside the data, so sessions survive a restart."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key)
    return key


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("DATA_DIR", "./data")).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = _normalise_database_url(
        os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{data_dir / 'importer.db'}"
    )
    redis_url = os.environ.get("REDIS_URL", "").strip() or None
    server_mode = not database_url.startswith("sqlite") or redis_url is not None
    secret_key = os.environ.get("SECRET_KEY", "").strip()
    if not secret_key:
        if server_mode:
            raise ConfigError("SECRET_KEY must be set in server mode (DATABASE_URL or REDIS_URL is set)")
        secret_key = _embedded_secret(data_dir)
    retry_raw = os.environ.get("WEBHOOK_RETRY_DELAYS", "").strip()
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        secret_key=secret_key,
        host=os.environ.get("HOST", "0.0.0.0" if server_mode else "127.0.0.1"),
        port=_number("PORT", 8080, int, "a whole number"),
        debug=os.environ.get("DEBUG", "").strip().lower() in {"1", "true", "yes", "on"},
        max_upload_mb=_number("MAX_UPLOAD_MB", 1024, int, "a whole number"),
        webhook_allowed_networks=tuple(
            part.strip() for part in os.environ.get("WEBHOOK_ALLOWED_NETWORKS", "").split(",") if part.strip()
        ),
        webhook_retry_delays=_delays(retry_raw) if retry_raw else DEFAULT_WEBHOOK_RETRY_DELAYS,
        webhook_timeout=_number("WEBHOOK_TIMEOUT", 10.0, float, "a number of seconds"),
        stale_import_seconds=_number("STALE_IMPORT_SECONDS", 60, int, "a whole number"),
        upload_retention_days=_number("UPLOAD_RETENTION_DAYS", 7, int, "a whole number"),
        merge_memory_mb=_number("IMPORT_MERGE_MEMORY_MB", 1024, int, "a whole number"),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
