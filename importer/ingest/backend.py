"""What the import pipeline needs from a database, and the choice of implementation."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class MergeCounts:
    created: int
    updated: int
    unchanged: int


def staging_table(upload_id: int) -> str:
    """One table per import: dropping it is instant, and it outlives a crashed worker."""
    return f"import_staging_{int(upload_id)}"


def for_dialect(name: str) -> ModuleType:
    if name == "postgresql":
        from importer.ingest import postgres

        return postgres
    from importer.ingest import sqlite

    return sqlite
