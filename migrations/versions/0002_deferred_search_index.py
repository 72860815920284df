"""deferred search index: partial trigram indexes, byte-ordered sku_key, partial inactive index

Imports leave their rows out of the trigram indexes (search_indexed = false) and a
background task adds them, so an import does not pay for the search index row by row.
sku_key sorts and compares bytewise ("C"), which is what SQLite does and several times
cheaper than a locale collation. The is_active index only holds inactive products: the
active ones are most of the catalogue, which an index does not help to find.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: Union[str, None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TRIGRAM_COLUMNS = ("sku", "name", "description")
INACTIVE = sa.text("NOT is_active")


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _trigram_indexes(where: sa.TextClause | None) -> None:
    for column in TRIGRAM_COLUMNS:
        op.drop_index(f"ix_products_{column}_trgm", table_name="products")
        op.create_index(f"ix_products_{column}_trgm", "products", [column], postgresql_using="gin",
                        postgresql_ops={column: "gin_trgm_ops"}, postgresql_where=where)


def upgrade() -> None:
    op.add_column("products", sa.Column("search_indexed", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.drop_index("ix_products_is_active", table_name="products")
    op.create_index("ix_products_inactive", "products", ["id"], postgresql_where=INACTIVE, sqlite_where=INACTIVE)
    if _is_postgresql():
        op.execute('ALTER TABLE products ALTER COLUMN sku_key TYPE varchar(400) COLLATE "C"')
        _trigram_indexes(sa.text("search_indexed"))
        op.create_index("ix_products_search_pending", "products", ["id"],
                        postgresql_where=sa.text("NOT search_indexed"))


def downgrade() -> None:
    if _is_postgresql():
        op.drop_index("ix_products_search_pending", table_name="products")
        _trigram_indexes(None)
        op.execute('ALTER TABLE products ALTER COLUMN sku_key TYPE varchar(400) COLLATE "default"')
    op.drop_index("ix_products_inactive", table_name="products")
    op.create_index("ix_products_is_active", "products", ["is_active"], unique=False)
    with op.batch_alter_table("products") as batch:
        batch.drop_column("search_indexed")
