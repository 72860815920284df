"""One signed HTTP attempt, described in words a user can act on. No database here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import requests

from importer.config import get_settings
from importer.errors import InvalidInput
from importer.webhooks import policy, signing

USER_AGENT = "ProductImporter-Webhooks/1.0"
GONE = 410


@dataclass(frozen=True)
class AttemptResult:
    status_code: Optional[int] = None
    response_time_ms: Optional[float] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def gone(self) -> bool:
        return self.status_code == GONE


def _status_error(response: requests.Response) -> Optional[str]:
    code = response.status_code
    if 200 <= code < 300:
        return None
    if 300 <= code < 400:
        location = response.headers.get("location", "")
        return f"redirect ({code}) to {location or 'an unnamed location'} not followed"
    return f"HTTP {code} {response.reason or ''}".rstrip()


def _connection_error(exc: requests.ConnectionError) -> str:
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    if "Name or service not known" in text or "getaddrinfo" in text:
        return "cannot resolve host"
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return f"connection failed: {reason or text}"


def _post(url: str, headers: dict[str, str], body: str, timeout: float) -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False  # a proxy from the environment would bypass the URL policy
        response = http.post(url, data=body.encode("utf-8"), headers=headers, timeout=timeout,
                             allow_redirects=False, stream=True)
        response.close()  # the status is the answer; a large or endless body is never read
        return response


def send(url: str, secret: str, message_id: str, body: str) -> AttemptResult:
    """Check the URL policy now (DNS can change), sign with a fresh timestamp, and POST once."""
    try:
        policy.check_url(url)
    except InvalidInput as exc:
        return AttemptResult(error=str(exc))
    timeout = get_settings().webhook_timeout
    headers = {"content-type": "application/json", "user-agent": USER_AGENT,
               **signing.signed_headers(secret, message_id, int(time.time()), body)}
    started = time.perf_counter()
    try:
        response = _post(url, headers, body, timeout)
    except requests.exceptions.SSLError as exc:
        error = f"TLS failure: {exc.args[0] if exc.args else exc}"
    except requests.Timeout:
        error = f"timed out after {timeout:g} s"
    except requests.ConnectionError as exc:
        error = _connection_error(exc)
    except requests.RequestException as exc:
        error = f"request failed: {exc}"
    else:
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return AttemptResult(status_code=response.status_code, response_time_ms=elapsed,
                             error=_status_error(response))
    return AttemptResult(response_time_ms=round((time.perf_counter() - started) * 1000, 1), error=error)
