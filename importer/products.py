"""The product catalogue: every create, change, delete and query goes through here."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

from sqlalchemy import Boolean, and_, delete, event, func, or_, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import Pool
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session

from importer import webhooks
from importer.errors import Conflict, InvalidInput, NotFound
from importer.models import (
    EventType,
    OutboxEvent,
    Product,
    ProductCreate,
    ProductPublic,
    ProductUpdate,
    sku_key,
    utcnow,
)

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
ORDERING_FIELDS = ("id", "sku", "name", "is_active", "created_at", "updated_at")
COUNT_CACHE_SECONDS = 60.0
CACHE_COUNTS_SLOWER_THAN = 0.05
COUNT_CACHE_ENTRIES = 256
CATALOGUE_LOCK_KEY = 742_001  # PostgreSQL advisory lock: imports' merges against writes that may add a SKU


@dataclass(frozen=True)
class ProductFilter:
    sku: Optional[str] = None
    name: Optional[str] = None
    description: Optional[str] = None
    is_active: Optional[bool] = None
    search: Optional[str] = None

    def conditions(self) -> list[ColumnElement[bool]]:
        searched = (Product.sku, Product.name, Product.description)
        matches = self._text_matches(searched)
        conditions: list[ColumnElement[bool]] = []
        if matches:
            bypassing_indexes = self._text_matches(tuple(column + "" for column in searched))
            conditions.append(_text_match(and_(*matches), and_(*bypassing_indexes)))
        if self.is_active is not None:
            conditions.append(Product.is_active == self.is_active)
        return conditions

    def _text_matches(self, columns: tuple[ColumnElement[str], ...]) -> list[ColumnElement[bool]]:
        """The text filters, on these expressions of sku, name and description."""
        matches = [_contains(column, value) for column, value in zip(columns, (self.sku, self.name, self.description))
                   if value]
        if self.search:
            matches.append(or_(*(_contains(column, self.search) for column in columns)))
        return matches


def _contains(column, value: str) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """ILIKE with the wildcards taken literally.

    SQLite's ILIKE folds ASCII only, so a needle with other letters is compared through
    Python's lower() there; ASCII needles keep the built-in (faster) path on both databases.
    """
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if value.isascii():
        return column.ilike(f"%{escaped}%", escape="\\")
    return _unicode_ilike(column, f"%{escaped.lower()}%")


class _unicode_ilike(FunctionElement[bool]):  # noqa: N801 - named like the SQL it stands for
    """`column ILIKE pattern`, with SQLite folding the column through Python's lower()."""

    inherit_cache = True
    type = Boolean()


@compiles(_unicode_ilike)
def _compile_ilike(element: _unicode_ilike, compiler: Any, **kw: Any) -> str:
    column, pattern = element.clauses
    return compiler.process(column.ilike(pattern, escape="\\"), **kw)


@compiles(_unicode_ilike, "sqlite")
def _compile_sqlite_ilike(element: _unicode_ilike, compiler: Any, **kw: Any) -> str:
    column, pattern = element.clauses
    return compiler.process(func.unicode_lower(column).like(pattern, escape="\\"), **kw)


class _text_match(FunctionElement[bool]):  # noqa: N801 - named like the SQL it stands for
    """The text filters of a query, given twice: on the columns, and on `column || ''`.

    On PostgreSQL the rows in the partial trigram indexes are matched on the columns (so the
    indexes serve them) and the rows an import has not yet added to them (importer.search_index)
    on the second form, which no trigram index serves: their own small index finds them. Had both
    halves the same text, the planner would factor it out of the OR and could use neither index.
    """

    inherit_cache = True
    type = Boolean()


@compiles(_text_match)
def _compile_text_match(element: _text_match, compiler: Any, **kw: Any) -> str:
    condition, _bypassing_indexes = element.clauses
    return f"({compiler.process(condition, **kw)})"


@compiles(_text_match, "postgresql")
def _compile_postgresql_text_match(element: _text_match, compiler: Any, **kw: Any) -> str:
    condition, bypassing_indexes = element.clauses
    either = or_(and_(Product.search_indexed, condition), and_(~Product.search_indexed, bypassing_indexes))
    return f"({compiler.process(either, **kw)})"


@event.listens_for(Pool, "checkout")
def _register_unicode_lower(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """On checkout rather than connect, so connections opened before this module loaded get it too."""
    if isinstance(dbapi_connection, sqlite3.Connection) and not record.info.get("unicode_lower"):
        dbapi_connection.create_function("unicode_lower", 1, _lower, deterministic=True)
        record.info["unicode_lower"] = True


def _lower(value: Optional[str]) -> Optional[str]:
    return None if value is None else value.lower()


@dataclass
class ProductPage:
    count: int
    page: int
    page_size: int
    results: list[Product] = field(default_factory=list)

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.count


class _CountCache:
    """Counts that were slow to compute, kept while the catalogue has not changed.

    The catalogue's version is its newest outbox event id: every product change, in any
    process, writes an event in its own transaction, so a new event means "count again".
    Local writes also clear the cache at once. The time limit bounds what the version
    cannot see (two writers committing out of id order). Cheap counts are never cached,
    so small catalogues are always counted exactly.
    """

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[ProductFilter, tuple[float, Optional[int], int]] = {}

    def get(self, key: ProductFilter, version: Optional[int]) -> Optional[int]:
        with self._lock:
            entry = self._entries.get(key)
        if entry and entry[1] == version and time.monotonic() - entry[0] < self._ttl:
            return entry[2]
        return None

    def put(self, key: ProductFilter, version: Optional[int], count: int) -> None:
        with self._lock:
            self._entries.pop(key, None)
            if len(self._entries) >= COUNT_CACHE_ENTRIES:  # every search typed adds one: drop the oldest
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (time.monotonic(), version, count)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


count_cache = _CountCache(COUNT_CACHE_SECONDS)


def parse_ordering(ordering: Optional[str]) -> list[ColumnElement]:  # type: ignore[type-arg]
    """`sku`, `-updated_at`, or several comma-separated; `id` breaks ties so pages are stable."""
    clauses = []
    names = [part.strip() for part in (ordering or "id").split(",") if part.strip()]
    for name in names:
        descending = name.startswith("-")
        field_name = name.lstrip("-")
        if field_name not in ORDERING_FIELDS:
            raise InvalidInput(f"ordering: unknown field {field_name!r}; use one of {', '.join(ORDERING_FIELDS)}")
        column = getattr(Product, field_name)
        clauses.append(column.desc() if descending else column.asc())
    if "id" not in {name.lstrip("-") for name in names}:
        clauses.append(Product.id.asc())
    return clauses


def _filtered(statement: Select, filters: ProductFilter) -> Select:  # type: ignore[type-arg]
    conditions = filters.conditions()
    return statement.where(*conditions) if conditions else statement


def catalogue_version(session: Session) -> Optional[int]:
    """Changes whenever any process commits a product change (one index probe)."""
    return session.execute(select(func.max(OutboxEvent.id))).scalar()


def count_products(session: Session, filters: ProductFilter = ProductFilter()) -> int:
    version = catalogue_version(session)
    cached = count_cache.get(filters, version)
    if cached is not None:
        return cached
    started = time.monotonic()
    count = session.execute(_filtered(select(func.count()).select_from(Product), filters)).scalar_one()
    if time.monotonic() - started >= CACHE_COUNTS_SLOWER_THAN:
        count_cache.put(filters, version, count)
    return count


def list_products(
    session: Session,
    filters: ProductFilter = ProductFilter(),
    *,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    ordering: Optional[str] = None,
) -> ProductPage:
    if page < 1:
        raise InvalidInput("page: must be 1 or more")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page_size: must be between 1 and {MAX_PAGE_SIZE}")
    order_by = parse_ordering(ordering)
    count = count_products(session, filters)
    if page > 1 and (page - 1) * page_size >= count:
        raise NotFound("Invalid page.")
    statement = _filtered(select(Product), filters).order_by(*order_by).offset((page - 1) * page_size).limit(page_size)
    results = list(session.execute(statement).scalars())
    return ProductPage(count=count, page=page, page_size=page_size, results=results)


def iter_products(
    session: Session, filters: ProductFilter = ProductFilter(), batch_size: int = 2000
) -> Iterator[Product]:
    """Every matching product in SKU order, fetched in keyset batches so memory stays flat.

    SKU order (by the unique case-folded key) rather than id order, so that a catalogue
    exported, re-imported and exported again gives the same file, whatever ids the import hands out.
    """
    last_key: Optional[str] = None
    while True:
        statement = _filtered(select(Product), filters).order_by(Product.sku_key).limit(batch_size)
        if last_key is not None:
            statement = statement.where(Product.sku_key > last_key)
        batch = list(session.execute(statement).scalars())
        if not batch:
            return
        yield from batch
        last_key = batch[-1].sku_key
        session.expunge_all()


def get_product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"Product {product_id} not found.")
    return product


def _ensure_sku_free(session: Session, sku: str, except_id: Optional[int] = None) -> None:
    statement = select(Product.id).where(Product.sku_key == sku_key(sku))
    existing = session.execute(statement).scalar_one_or_none()
    if existing is not None and existing != except_id:
        raise Conflict(f"sku: a product with SKU {sku!r} already exists (SKUs are case-insensitive).")


def _flush_unique(session: Session, sku: str) -> None:
    """A concurrent writer can still take the SKU between the check and the insert."""
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"sku: a product with SKU {sku!r} already exists (SKUs are case-insensitive).") from exc


def _event_data(product: Product) -> dict:  # type: ignore[type-arg]
    return ProductPublic.model_validate(product).model_dump(mode="json")


def lock_catalogue(connection: Connection, *, exclusive: bool) -> None:
    """Until commit, on PostgreSQL: an import's merge (exclusive) waits for, and holds off, writes
    that may add a SKU (shared), since it inserts the SKUs it did not find. SQLite has one writer anyway.
    """
    if connection.dialect.name == "postgresql":
        lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        connection.execute(text(f"SELECT {lock}(:key)"), {"key": CATALOGUE_LOCK_KEY})


def create_product(session: Session, data: ProductCreate) -> Product:
    lock_catalogue(session.connection(), exclusive=False)
    _ensure_sku_free(session, data.sku)
    now = utcnow()
    product = Product(**data.model_dump(), sku_key=sku_key(data.sku), created_at=now, updated_at=now)
    session.add(product)
    _flush_unique(session, data.sku)
    webhooks.record_event(session, EventType.product_created, _event_data(product))
    count_cache.clear()
    return product


def update_product(session: Session, product_id: int, data: ProductUpdate, *, partial: bool) -> Product:
    """PUT (partial=False) needs every required field; PATCH changes only what it names.

    An explicit null is refused rather than ignored, so a client never believes it cleared a field.
    """
    changes = data.model_dump(exclude_unset=True)
    null = next((key for key, value in changes.items() if value is None), None)
    if null:
        raise InvalidInput(f"{null}: must not be null")
    missing = [] if partial else [name for name in ("sku", "name") if name not in changes]
    if missing:
        raise InvalidInput(f"{missing[0]}: field required")
    product = get_product(session, product_id)
    if "sku" in changes:
        lock_catalogue(session.connection(), exclusive=False)
        _ensure_sku_free(session, changes["sku"], except_id=product.id)
        product.sku_key = sku_key(changes["sku"])
    for key, value in changes.items():
        setattr(product, key, value)
    product.updated_at = utcnow()
    session.add(product)
    _flush_unique(session, product.sku)
    webhooks.record_event(session, EventType.product_updated, _event_data(product))
    count_cache.clear()
    return product


def delete_product(session: Session, product_id: int) -> None:
    product = get_product(session, product_id)
    data = _event_data(product)
    session.delete(product)
    session.flush()
    webhooks.record_event(session, EventType.product_deleted, data)
    count_cache.clear()


def delete_all_products(session: Session) -> int:
    """One statement and one event, however many products there are."""
    deleted = session.execute(delete(Product)).rowcount or 0
    webhooks.record_event(session, EventType.all_products_deleted, {"deleted": deleted})
    count_cache.clear()
    return deleted
