"""Real HTTP receivers on 127.0.0.1 for the webhook tests, and the settings they need.

Import the fixtures into a test module: `from tests.webhook_receivers import receivers, allow_loopback`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

import pytest

WAIT_SECONDS = 20.0


@dataclass
class Received:
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers every POST with `status` (after `delay` seconds, or once `hold` is released) and records it."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    hold: Optional[threading.Event] = None
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    _closing: threading.Event = field(default_factory=threading.Event)

    def record(self, request: Received) -> None:
        with self._arrived:
            self.received.append(request)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[Received]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout)
            assert len(self.received) >= count, f"expected {count} requests at {self.url}, got {len(self.received)}"
            return list(self.received)

    def pause(self) -> None:
        if self.hold is not None:
            self.hold.wait(WAIT_SECONDS)
        elif self.delay:
            self._closing.wait(self.delay)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server naming
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length).decode("utf-8")
            receiver.record(Received({k.lower(): v for k, v in self.headers.items()}, body))
            receiver.pause()
            try:
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up (timeout): that is what some tests want

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """`receivers(status=500)` starts a receiver; all are stopped after the test."""
    servers: list[tuple[ThreadingHTTPServer, Receiver]] = []

    def start(**behaviour: Any) -> Receiver:
        receiver = Receiver(**behaviour)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        server.daemon_threads = True
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, receiver))
        return receiver

    yield start
    for server, receiver in servers:
        receiver._closing.set()
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A loopback port nobody listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def webhook_settings() -> Iterator[Callable[..., None]]:
    """`webhook_settings(WEBHOOK_TIMEOUT="5")` changes settings for one test, then restores them."""
    from importer.config import get_settings

    saved: dict[str, Optional[str]] = {}

    def apply(**values: str) -> None:
        for name, value in values.items():
            saved.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        get_settings.cache_clear()

    yield apply
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


@pytest.fixture
def allow_loopback(webhook_settings: Callable[..., None]) -> None:
    """The tests' receivers live on 127.0.0.1, which the URL policy blocks unless allowed."""
    webhook_settings(WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32")


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT_SECONDS, message: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; fails the test if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")
