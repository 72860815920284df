"""Alembic environment: runs against the engine the app uses, one migrator at a time."""

from alembic import context
from sqlalchemy import text
from sqlmodel import SQLModel

import importer.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from importer.db import get_engine

MIGRATION_LOCK_ID = 7_130_001


def run_migrations_online() -> None:
    engine = get_engine()
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Web and worker processes start together; only one may migrate at a time.
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=SQLModel.metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                connection.commit()


run_migrations_online()
