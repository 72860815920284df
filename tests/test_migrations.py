"""The migrations build exactly the schema the models describe, and can be undone and redone."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
import pytest
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import importer.models  # noqa: F401  (registers every table)
from importer.db import alembic_config, get_engine

TRIGRAM_INDEXES = {f"ix_products_{column}_trgm" for column in ("sku", "name", "description")}
POSTGRES_ONLY_INDEXES = TRIGRAM_INDEXES | {"ix_products_search_pending"}


def _postgres_only(obj: Any, name: Any, type_: str, reflected: bool, compare_to: Any) -> bool:
    """The search indexes are created on PostgreSQL only (`ddl_if`), so SQLite must not be asked for them."""
    return not (get_engine().dialect.name != "postgresql" and type_ == "index" and name in POSTGRES_ONLY_INDEXES)


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
    expected = POSTGRES_ONLY_INDEXES if engine.dialect.name == "postgresql" else set()
    assert indexes & POSTGRES_ONLY_INDEXES == expected


def test_partial_indexes_and_byte_order_on_postgresql() -> None:
    """compare_metadata sees neither index predicates nor collations: checked here."""
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL schema details")
    with engine.connect() as connection:
        definitions = dict(connection.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'products'")).all())
        collation = connection.execute(text(
            "SELECT collation_name FROM information_schema.columns "
            "WHERE table_name = 'products' AND column_name = 'sku_key'")).scalar_one()
    assert collation == "C"
    for name in TRIGRAM_INDEXES:
        assert definitions[name].endswith("WHERE search_indexed"), definitions[name]
    assert definitions["ix_products_search_pending"].endswith("WHERE (NOT search_indexed)")
    assert definitions["ix_products_inactive"].endswith("WHERE (NOT is_active)")


def test_downgrade_to_base_and_upgrade_again() -> None:
    config = alembic_config()
    command.downgrade(config, "base")
    assert set(inspect(get_engine()).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert set(SQLModel.metadata.tables) <= set(inspect(get_engine()).get_table_names())
    assert _differences() == []
