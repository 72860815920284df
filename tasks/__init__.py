"""The Huey instance. Tasks carry ids only; job state lives in the database.

Embedded mode queues in SQLite under DATA_DIR and runs consumer threads inside the web
process; server mode queues in Redis and runs `python main.py worker` processes.
"""

from __future__ import annotations

from huey import RedisHuey, SqliteHuey
from huey.api import Huey

from importer.config import get_settings


def _build_huey() -> Huey:
    settings = get_settings()
    if settings.redis_url:
        return RedisHuey("product-importer", url=settings.redis_url, results=False)
    return SqliteHuey("product-importer", filename=str(settings.queue_path), results=False)


huey: Huey = _build_huey()


def is_queue_up() -> bool:
    try:
        huey.pending_count()
        return True
    except Exception:  # noqa: BLE001 - any failure means "down" for the health check
        return False
