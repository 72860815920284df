"""NiceGUI pages. `register(app)` imports the page modules and guards them with a login."""

from __future__ import annotations

import importlib
import sys

from fastapi import FastAPI

PAGE_MODULES = ("ui.auth_pages", "ui.products_page", "ui.import_progress", "ui.imports_page", "ui.webhooks_page")


def register(app: FastAPI) -> None:
    """Import the pages afresh: NiceGUI's test fixture drops page routes between tests."""
    for name in [name for name in sys.modules if name.startswith("ui.")]:
        del sys.modules[name]
    for name in PAGE_MODULES:
        importlib.import_module(name)
    from ui.session import AuthMiddleware

    app.add_middleware(AuthMiddleware)
