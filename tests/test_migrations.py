"""The migrations build exactly the schema the models describe, and can be undone and redone."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import importer.models  # noqa: F401  (registers every table)
from importer.db import alembic_config, get_engine

TRIGRAM_INDEXES = {f"ix_products_{column}_trgm" for column in ("sku", "name", "description")}


def _postgres_only(obj: Any, name: Any, type_: str, reflected: bool, compare_to: Any) -> bool:
    """The trigram indexes are created on PostgreSQL only (`ddl_if`), so SQLite must not be asked for them."""
    return not (get_engine().dialect.name != "postgresql" and type_ == "index" and name in TRIGRAM_INDEXES)


def _differences() -> list[Any]:
    with get_engine().connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": _postgres_only}
        )
        return compare_metadata(context, SQLModel.metadata)


def test_models_and_migrations_agree() -> None:
    assert _differences() == []


def test_trigram_indexes_exist_on_postgresql_only() -> None:
    engine = get_engine()
    indexes = {index["name"] for index in inspect(engine).get_indexes("products")}
    expected = TRIGRAM_INDEXES if engine.dialect.name == "postgresql" else set()
    assert indexes & TRIGRAM_INDEXES == expected


def test_downgrade_to_base_and_upgrade_again() -> None:
    config = alembic_config()
    command.downgrade(config, "base")
    assert set(inspect(get_engine()).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert set(SQLModel.metadata.tables) <= set(inspect(get_engine()).get_table_names())
    assert _differences() == []
