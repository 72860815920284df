"""Tables and their API schemas. One class per table; the schemas sit beside the table they shape."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any, Optional

from pydantic import field_validator
from sqlalchemy import JSON, Column, Index, String, Text, text, true
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel

SKU_MAX = 100
NAME_MAX = 255
URL_MAX = 2048


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def sku_key(sku: str) -> str:
    """The identity of a SKU: Unicode case folding done in Python, so SQLite and PostgreSQL agree."""
    return sku.strip().casefold()


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on both databases; SQLite would otherwise hand back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


# --- products -------------------------------------------------------------------------


SEARCH_INDEXED = text("search_indexed")


def _trigram_index(column: str) -> Index:
    """Substring search at scale on PostgreSQL (pg_trgm); SQLite gets no such index.

    Partial: an import leaves its rows out (maintaining these indexes row by row costs ~60 µs a
    row, ten times the rest of the import) and importer.search_index adds them afterwards.
    """
    return Index(
        f"ix_products_{column}_trgm", column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"},
        postgresql_where=SEARCH_INDEXED,
    ).ddl_if(dialect="postgresql")


SKU_KEY_TYPE = String(4 * SKU_MAX).with_variant(String(4 * SKU_MAX, collation="C"), "postgresql")


class ProductBase(SQLModel):
    sku: str = Field(max_length=SKU_MAX)
    name: str = Field(max_length=NAME_MAX)
    description: str = Field(default="", sa_type=Text)
    is_active: bool = True


class Product(ProductBase, table=True):
    __tablename__ = "products"
    __table_args__ = (
        Index("ix_products_sku_key", "sku_key", unique=True),
        Index("ix_products_updated_at", "updated_at"),
        Index("ix_products_inactive", "id", postgresql_where=text("NOT is_active"), sqlite_where=text("NOT is_active")),
        Index("ix_products_search_pending", "id", postgresql_where=text("NOT search_indexed")).ddl_if(
            dialect="postgresql"),
        *(_trigram_index(column) for column in ("sku", "name", "description")),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    sku_key: str = Field(sa_type=SKU_KEY_TYPE)  # byte order ("C"): the same on both databases, and fast to sort
    search_indexed: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    created_at: datetime = _created()
    updated_at: datetime = _created()


def _strip_required(value: str, field_name: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{field_name} must not be empty")
    return value


class ProductCreate(ProductBase):
    @field_validator("sku")
    @classmethod
    def _sku(cls, value: str) -> str:
        return _strip_required(value, "sku")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _strip_required(value, "name")


class ProductUpdate(SQLModel):
    sku: Optional[str] = Field(default=None, max_length=SKU_MAX)
    name: Optional[str] = Field(default=None, max_length=NAME_MAX)
    description: Optional[str] = None
    is_active: Optional[bool] = None

    @field_validator("sku")
    @classmethod
    def _sku(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else _strip_required(value, "sku")

    @field_validator("name")
    @classmethod
    def _name(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else _strip_required(value, "name")


class ProductPublic(ProductBase):
    id: int
    created_at: datetime
    updated_at: datetime


# --- users and tokens -----------------------------------------------------------------


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: Optional[int] = Field(default=None, primary_key=True)
    username: str = Field(max_length=150, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    is_admin: bool = False
    created_at: datetime = _created()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = _created()
    last_used_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)


# --- uploads (imports) ----------------------------------------------------------------


class UploadStatus(str, enum.Enum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    completed_with_errors = "completed_with_errors"
    failed = "failed"
    cancelled = "cancelled"


FINISHED_STATUSES = {
    UploadStatus.completed,
    UploadStatus.completed_with_errors,
    UploadStatus.failed,
    UploadStatus.cancelled,
}


class Upload(SQLModel, table=True):
    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_status", "status"), Index("ix_uploads_created_at", "created_at"))

    id: Optional[int] = Field(default=None, primary_key=True)
    filename: str = Field(max_length=255)
    stored_path: str = Field(max_length=1024)
    size_bytes: int = 0
    status: str = Field(default=UploadStatus.pending.value, max_length=32)
    stage: str = Field(default="queued", max_length=32)
    progress: float = 0.0
    total_rows: Optional[int] = None
    processed_rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed_rows: int = 0
    error: Optional[str] = Field(default=None, sa_type=Text)
    encoding: Optional[str] = Field(default=None, max_length=32)
    delimiter: Optional[str] = Field(default=None, max_length=8)
    ignored_columns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    has_active_column: bool = False
    bytes_read: int = 0
    staged_rows: int = 0
    cancel_requested: bool = False
    attempts: int = 0  # claims so far; also the token that fences off an earlier claim's worker
    attempts_before_retry: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    heartbeat_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    created_by_id: Optional[int] = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = _created()
    started_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    finished_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)


class UploadPublic(SQLModel):
    id: int
    filename: str
    status: str
    stage: str
    progress: float
    total_rows: Optional[int]
    processed_rows: int
    created: int
    updated: int
    unchanged: int
    failed_rows: int
    error: Optional[str]
    encoding: Optional[str]
    delimiter: Optional[str]
    ignored_columns: list[str]
    size_bytes: int
    created_at: datetime
    started_at: Optional[datetime]
    finished_at: Optional[datetime]


class UploadError(SQLModel, table=True):
    __tablename__ = "upload_errors"
    __table_args__ = (Index("ix_upload_errors_upload_row", "upload_id", "row_number"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    upload_id: int = Field(foreign_key="uploads.id", ondelete="CASCADE")
    row_number: int
    column: str = Field(default="", max_length=255)
    value: str = Field(default="", sa_type=Text)
    message: str = Field(sa_type=Text)


# --- webhooks -------------------------------------------------------------------------


class EventType(str, enum.Enum):
    product_created = "product_created"
    product_updated = "product_updated"
    product_deleted = "product_deleted"
    product_imported = "product_imported"
    all_products_deleted = "all_products_deleted"
    all = "all"


class Webhook(SQLModel, table=True):
    __tablename__ = "webhooks"

    id: Optional[int] = Field(default=None, primary_key=True)
    url: str = Field(max_length=URL_MAX)
    event_type: str = Field(max_length=32, index=True)
    is_active: bool = True
    secret: str = Field(max_length=255)
    disabled_reason: Optional[str] = Field(default=None, sa_type=Text)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class WebhookCreate(SQLModel):
    url: str = Field(max_length=URL_MAX)
    event_type: EventType
    is_active: bool = True
    secret: Optional[str] = Field(default=None, max_length=255)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _strip_required(value, "url")


class WebhookUpdate(SQLModel):
    url: Optional[str] = Field(default=None, max_length=URL_MAX)
    event_type: Optional[EventType] = None
    is_active: Optional[bool] = None
    secret: Optional[str] = Field(default=None, max_length=255)

    @field_validator("url")
    @classmethod
    def _url(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else _strip_required(value, "url")


class WebhookPublic(SQLModel):
    """`secret` is in full only right after creation or regeneration, masked otherwise."""

    id: int
    url: str
    event_type: str
    is_active: bool
    secret: str
    disabled_reason: Optional[str] = None
    last_delivery_status: Optional[str] = None
    last_status_code: Optional[int] = None
    last_delivery_at: Optional[datetime] = None
    created_at: datetime
    updated_at: datetime


class WebhookTestResult(SQLModel):
    ok: bool
    status_code: Optional[int] = None
    response_time_ms: Optional[float] = None
    error: Optional[str] = None


class OutboxEvent(SQLModel, table=True):
    """An event written in the same transaction as the change it describes."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_undispatched", "dispatched_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    event_type: str = Field(max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _created()
    dispatched_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook; `message_id` is the `webhook-id` header, stable across retries."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "created_at"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhooks.id", ondelete="CASCADE")
    event_id: Optional[int] = Field(default=None, foreign_key="webhook_events.id", ondelete="SET NULL")
    event_type: str = Field(max_length=32)
    message_id: str = Field(max_length=64)
    body: str = Field(sa_type=Text)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    last_status_code: Optional[int] = None
    last_error: Optional[str] = Field(default=None, sa_type=Text)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "webhook_delivery_attempts"

    id: Optional[int] = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_deliveries.id", ondelete="CASCADE", index=True)
    attempt: int
    attempted_at: datetime = _created()
    status_code: Optional[int] = None
    response_time_ms: Optional[float] = None
    error: Optional[str] = Field(default=None, sa_type=Text)


class DeliveryAttemptPublic(SQLModel):
    attempt: int
    attempted_at: datetime
    status_code: Optional[int]
    response_time_ms: Optional[float]
    error: Optional[str]


class WebhookDeliveryPublic(SQLModel):
    id: int
    webhook_id: int
    event_type: str
    message_id: str
    status: str
    next_attempt_at: Optional[datetime]
    last_status_code: Optional[int]
    last_error: Optional[str]
    payload: dict[str, Any]
    attempts: list[DeliveryAttemptPublic]
    created_at: datetime
    updated_at: datetime
