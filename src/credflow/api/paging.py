"""Lists: ``{"items": [...], "next_cursor": str|null}`` with ``?limit=`` (default 50, max 500) and ``?cursor=``.
Each list is one page read in the database along its time-ordered key (``credflow.services.lookup.seek``); a
cursor is the ``next_cursor`` a page gave."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

Limit = Annotated[int, Query(ge=1, le=500)]
