"""One signed HTTP attempt, described in words a user can act on. No database here."""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, Optional

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

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


def _root_cause(exc: BaseException) -> BaseException:
    """requests wraps urllib3 wraps the socket or ssl error; the innermost one says what happened."""
    while True:
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc.__cause__
        if inner is None:
            return exc
        exc = inner


def _tls_error(exc: requests.exceptions.SSLError) -> str:
    root = _root_cause(exc)
    if isinstance(root, ssl.SSLCertVerificationError):
        return f"TLS failure: certificate not trusted ({root.verify_message})"
    text = re.sub(r"^\[SSL: [A-Z_]+\] | \(_ssl\.c:\d+\)$", "", root.strerror or str(root)) if isinstance(
        root, ssl.SSLError) else str(root)
    return f"TLS failure: {text}"


def _connection_error(exc: requests.ConnectionError) -> str:
    root = _root_cause(exc)
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    if isinstance(root, socket.gaierror):
        return f"cannot resolve host: {root.strerror or root}"
    return f"connection failed: {root}"


class _CheckedPeer:
    """Checks the address actually connected to, closing the gap between the DNS check and the connection."""

    host: str

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        try:
            policy.check_connected(self.host, sock.getpeername()[0])
        except policy.BlockedByPolicy:
            sock.close()
            raise
        return sock


class _CheckedHTTPConnection(_CheckedPeer, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedPeer, HTTPSConnection):
    pass


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _PolicyAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}


def _post(url: str, headers: dict[str, str], body: str, timeout: float) -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False  # a proxy from the environment would bypass the URL policy
        for scheme in ("http://", "https://"):
            http.mount(scheme, _PolicyAdapter())
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
    except policy.BlockedByPolicy as exc:
        error = str(exc)
    except requests.exceptions.SSLError as exc:
        error = _tls_error(exc)
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
