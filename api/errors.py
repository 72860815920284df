"""Every API failure becomes `{"detail": "..."}` with a fitting status; never a stack trace."""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from api.deps import CurrentUser
from importer.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)

_DOMAIN_STATUS = {NotFound: 404, Conflict: 409, InvalidInput: 422}


def _location(error: dict) -> str:  # type: ignore[type-arg]
    parts = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")]
    return ".".join(parts)


def describe_validation_errors(errors: list[dict]) -> str:  # type: ignore[type-arg]
    messages = []
    for error in errors:
        where = _location(error)
        messages.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "; ".join(messages)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        return JSONResponse({"detail": "Malformed JSON in the request body."}, status_code=400)
    return JSONResponse({"detail": describe_validation_errors(errors)}, status_code=422)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    status = next(code for cls, code in _DOMAIN_STATUS.items() if isinstance(exc, cls))
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _guard_api(request: Request, call_next):  # type: ignore[no-untyped-def]
    """Unexpected failures in /api/ answer JSON; a lost database answers 503, not 500."""
    if not request.url.path.startswith("/api/"):
        return await call_next(request)
    try:
        return await call_next(request)
    except OperationalError:
        log.exception("database unavailable during %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "The database is unavailable; try again shortly."}, status_code=503)
    except Exception:
        log.exception("unhandled error during %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "Internal server error."}, status_code=500)


fallback_router = APIRouter(include_in_schema=False)


@fallback_router.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def _unknown_endpoint(path: str, _: CurrentUser) -> JSONResponse:
    """Authentication first, as everywhere in /api/: anonymous callers cannot probe which paths exist."""
    return JSONResponse({"detail": f"No API endpoint at /api/{path}."}, status_code=404)


def register(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    for cls in _DOMAIN_STATUS:
        app.add_exception_handler(cls, _domain_error)
    app.middleware("http")(_guard_api)
