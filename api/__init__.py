"""REST adapters over the importer core. `register(app)` mounts every router and handler."""

from __future__ import annotations

from fastapi import FastAPI

from api import errors, health, products, uploads, webhooks


def register(app: FastAPI) -> None:
    errors.register(app)
    for module in (health, products, uploads, webhooks):
        app.include_router(module.router)
    app.include_router(errors.fallback_router)
