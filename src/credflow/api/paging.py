"""Lists: ``{"items": [...], "next_cursor": str|null}`` with ``?limit=`` (default 50, max 500) and ``?cursor=``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

Limit = Annotated[int, Query(ge=1, le=500)]


def page(items: list[dict[str, Any]], limit: int = 50, cursor: str | None = None,
         key: str = "id") -> dict[str, Any]:
    if cursor:
        items = [i for i in items if str(i[key]) > cursor]
    chunk = items[:limit]
    more = len(items) > limit
    return {"items": chunk, "next_cursor": str(chunk[-1][key]) if more and chunk else None}
