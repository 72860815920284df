"""`/api/health/`: open to all, so load balancers and people can see what is down."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from importer.db import is_database_up
from tasks import is_queue_up

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health/")
def health() -> JSONResponse:
    database = is_database_up()
    queue = is_queue_up()
    body = {"status": "ok" if database and queue else "degraded",
            "database": "ok" if database else "down",
            "queue": "ok" if queue else "down"}
    return JSONResponse(body, status_code=200 if database and queue else 503)
