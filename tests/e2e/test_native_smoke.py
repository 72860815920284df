"""The desktop window (`python main.py --native`) on a virtual X screen.

The window is real: pywebview's Qt backend under Xvfb. Its page is read through Qt
WebEngine's DevTools port, the screen through an X screenshot, and the system file dialog
is answered by typing into it with xdotool, as a person would.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from tests.e2e.conftest import (
    E2E_PASSWORD, E2E_USER, SCREENSHOTS, TEST_DATA, app_environment, free_port, require_or_skip, run_cli,
    start_app, stop_process_group, wait_until_healthy,
)
from tests.webhook_receivers import wait_until

pytestmark = pytest.mark.e2e

WINDOW_SECONDS = 90
SCREEN = "1280x900x24"
SCREENSHOT_SCRIPT = """
import sys
from PyQt6.QtGui import QGuiApplication
app = QGuiApplication(sys.argv)
image = app.primaryScreen().grabWindow(0).toImage()
image.save(sys.argv[1])
step = 8
colours = {image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)}
print(len(colours))
"""

BAR_DRAWN_FULL = """(() => {
    const bar = document.querySelector('.q-linear-progress');
    const model = bar?.querySelector('.q-linear-progress__model');
    return !!model && model.getBoundingClientRect().width / bar.getBoundingClientRect().width > 0.999;
})()"""


def wait_for(predicate: Any, what: str) -> Any:
    return wait_until(predicate, timeout=WINDOW_SECONDS, message=what)


@pytest.fixture(scope="module")
def virtual_display() -> Iterator[str]:
    if not shutil.which("Xvfb"):
        require_or_skip("Xvfb is not installed (apt-get install xvfb)")
    if importlib.util.find_spec("webview") is None or importlib.util.find_spec("PyQt6") is None:
        require_or_skip("the desktop window packages are not installed (pip install -r requirements-native.txt)")
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", SCREEN, "-nolisten", "tcp"],
                            pass_fds=(write_end,), stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(write_end)
    with os.fdopen(read_end) as display_number:
        display = f":{display_number.readline().strip()}"
    try:
        yield display
    finally:
        stop_process_group(xvfb)


class WindowPage:
    """The window's web page, read and driven over Qt WebEngine's Chrome DevTools Protocol."""

    def __init__(self, devtools_port: int) -> None:
        self.devtools = f"http://127.0.0.1:{devtools_port}"
        self._ids = itertools.count(1)
        self.socket = websocket.create_connection(self._page_socket_url(), suppress_origin=True, timeout=30)

    def _page_socket_url(self) -> str:
        def page() -> str | None:
            try:
                targets = requests.get(f"{self.devtools}/json", timeout=2).json()
            except requests.RequestException:
                return None
            return next((t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"), None)

        return wait_for(page, "the window's page on the DevTools port")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        self.socket.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == request_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def path(self) -> str:
        return self.evaluate("location.pathname")

    def wait_for_text(self, text: str) -> None:
        wait_for(lambda: text.casefold() in self.text().casefold(), f"{text!r} in the window")

    def type_into(self, label: str, value: str) -> None:
        """Focus the Quasar field with this label, then type as a keyboard would."""
        focused = self.evaluate(f"""(() => {{
            const field = [...document.querySelectorAll('label.q-field')]
                .find(f => f.querySelector('.q-field__label')?.innerText.trim() === {json.dumps(label)});
            const input = field?.querySelector('input');
            if (!input) return false;
            input.focus();
            return true;
        }})()""")
        assert focused, f"no field labelled {label!r} in the window"
        self.call("Input.insertText", text=value)

    def click_button(self, caption: str) -> None:
        clicked = self.evaluate(f"""(() => {{
            const button = [...document.querySelectorAll('button')]
                .find(b => b.innerText.trim().toLowerCase().includes({json.dumps(caption.lower())}));
            if (!button) return false;
            button.click();
            return true;
        }})()""")
        assert clicked, f"no button {caption!r} in the window:\n{self.text()}"

    def close(self) -> None:
        self.socket.close()


@dataclass
class NativeApp:
    process: subprocess.Popen
    url: str
    display: str
    data_dir: Path
    log_path: Path
    page: WindowPage

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(scope="module")
def native_app(virtual_display: str) -> Iterator[NativeApp]:
    data_dir = Path(tempfile.mkdtemp(prefix="importer-native-"))
    port, devtools_port = free_port(), free_port()
    environment = app_environment(
        data_dir, DISPLAY=virtual_display, QT_QPA_PLATFORM="xcb",
        QTWEBENGINE_REMOTE_DEBUGGING=f"127.0.0.1:{devtools_port}",
    )
    run_cli(environment, "createuser", E2E_USER, "--password", E2E_PASSWORD)
    log_path = data_dir / "native.log"
    process = start_app(environment, log_path, "--native", "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url, log_path, WINDOW_SECONDS)
        wait_for(lambda: "the desktop window has loaded the app" in log_path.read_text() or process.poll() is not None,
                 "the window to load the app")
        assert process.poll() is None, f"the app exited:\n{log_path.read_text()[-4000:]}"
        page = WindowPage(devtools_port)
        yield NativeApp(process, url, virtual_display, data_dir, log_path, page)
        page.close()
    finally:
        stop_process_group(process)
        shutil.rmtree(data_dir, ignore_errors=True)


def screenshot(display: str, name: str) -> int:
    """Save the whole X screen; return how many colours a coarse sample of it has."""
    SCREENSHOTS.mkdir(exist_ok=True)
    completed = subprocess.run(
        [sys.executable, "-c", SCREENSHOT_SCRIPT, str(SCREENSHOTS / f"{name}.png")],
        env={**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"},
        capture_output=True, text=True, timeout=60, check=True,
    )
    return int(completed.stdout.strip().splitlines()[-1])


def test_window_opens_and_shows_the_login_page(native_app: NativeApp) -> None:
    native_app.page.wait_for_text("Sign in to manage your catalogue.")
    assert native_app.page.path() == "/login"
    colours = screenshot(native_app.display, "native_window_login")
    assert colours > 20, "the X screen looks blank: the window did not render"
    assert native_app.process.poll() is None


def test_choose_file_imports_from_the_system_dialog(native_app: NativeApp, tmp_path: Path) -> None:
    if not shutil.which("xdotool"):
        require_or_skip("xdotool is not installed (apt-get install xdotool)")
    source = tmp_path / "chosen in the dialog.csv"
    shutil.copyfile(TEST_DATA / "products_100.csv", source)
    page = native_app.page
    page.wait_for_text("Sign in to manage your catalogue.")
    page.type_into("Username", E2E_USER)
    page.type_into("Password", E2E_PASSWORD)
    page.click_button("Log in")
    wait_for(lambda: page.path() == "/products", "the products page after logging in")
    page.evaluate("location.assign('/imports')")
    wait_for(lambda: page.path() == "/imports", "the imports page")
    page.wait_for_text("Choose a CSV on this computer")

    page.click_button("Choose a CSV on this computer")
    dialog = wait_for(lambda: xdotool(native_app.display, "search", "--onlyvisible", "--name", "^Open"),
                      "the system file dialog")
    screenshot(native_app.display, "native_file_dialog")
    window_id = dialog.split()[0]
    xdotool(native_app.display, "windowfocus", "--sync", window_id)
    xdotool(native_app.display, "type", "--delay", "10", str(source))
    xdotool(native_app.display, "key", "Return")

    page.wait_for_text("100 created")
    wait_for(lambda: page.evaluate(BAR_DRAWN_FULL), "the progress bar to be drawn full")
    screenshot(native_app.display, "native_import_done")
    assert source.read_bytes() == (TEST_DATA / "products_100.csv").read_bytes(), "the chosen file is left as it was"
    wait_for(lambda: not any(path.is_file() for path in (native_app.data_dir / "uploads").rglob("*")),
             "the app's own copy to go once its import has completed")


def xdotool(display: str, *arguments: str) -> str:
    completed = subprocess.run(["xdotool", *arguments], env={**os.environ, "DISPLAY": display},
                               capture_output=True, text=True, timeout=30)
    return completed.stdout.strip() if completed.returncode == 0 else ""
