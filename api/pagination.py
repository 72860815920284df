"""DRF-style page envelopes: `{"count", "next", "previous", "results"}`."""

from __future__ import annotations

from typing import Generic, Optional, TypeVar

from fastapi import Request
from pydantic import BaseModel

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    count: int
    next: Optional[str]
    previous: Optional[str]
    results: list[T]


def page_links(request: Request, page: int, has_next: bool) -> tuple[Optional[str], Optional[str]]:
    next_url = str(request.url.include_query_params(page=page + 1)) if has_next else None
    if page <= 1:
        return next_url, None
    previous = request.url.include_query_params(page=page - 1)
    return next_url, str(previous.remove_query_params("page") if page == 2 else previous)
