"""Finding a row by what a caller names it: a row of an environment by its id or its name, a user by id or email;
one page of a long list, searched by name and sorted, for the pages; and one page of an API list along its
time-ordered key (``seek``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select, union
from sqlalchemy.orm import Session

from credflow.domain.errors import Malformed, NotFound, RuleViolation
from credflow.persistence.tables import User

T = TypeVar("T")


def row_in_env(s: Session, table: type[T], env_id: str, ref: str, name: Any = None) -> T | None:
    """The row of ``table`` in the environment whose id is ``ref``, else the one whose name is ``ref`` (the column
    ``name``, by default ``table.name``); None when there is neither."""
    rows: Any = table
    row = s.get(rows, ref)
    if row is not None and row.env_id == env_id:
        return row
    column = rows.name if name is None else name
    return s.scalar(select(rows).where(rows.env_id == env_id, column == ref))


def find_in_env(s: Session, table: type[T], env_id: str, ref: str, what: str, code: str, name: Any = None) -> T:
    """``row_in_env``, or 404 ``{what} 'ref' not found`` with the error code ``code``."""
    row = row_in_env(s, table, env_id, ref, name)
    if row is None:
        raise NotFound(f"{what} {ref!r} not found", code=code)
    return row


def user_by_id_or_email(s: Session, ref: str) -> User | None:
    """The user whose id is ``ref``, else the one whose email is ``ref`` (in any case); of any organization."""
    return s.get(User, ref) or s.scalar(select(User).where(func.lower(User.email) == ref.lower()))


MAX_PAGE = 200


@dataclass(frozen=True)
class Listing:
    """What a person asks of a long list: the rows whose name holds ``search`` (in any case), in the order of the
    sort key ``sort`` (one the list offers, else its first), ``limit`` rows (at most 200) from ``offset``."""

    search: str = ""
    sort: str = ""
    descending: bool = False
    offset: int = 0
    limit: int = 50

    def __post_init__(self) -> None:
        object.__setattr__(self, "search", self.search.strip()[:200])
        object.__setattr__(self, "offset", max(0, self.offset))
        object.__setattr__(self, "limit", min(max(1, self.limit), MAX_PAGE))


def holds(columns: Iterable[Any], text: str) -> Any:
    """The rows where one of ``columns`` holds ``text``, in any case (``%`` and ``_`` are taken literally)."""
    needle = text.lower()
    return or_(*(func.lower(c).contains(needle, autoescape=True) for c in columns))


def page(s: Session, q: Select[Any], listing: Listing, *, search: list[Any], sorts: dict[str, Any], key: Any,
         view: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """One page of the rows of ``q`` (a select of one table): searched in the ``search`` columns, sorted by the
    column ``sorts[listing.sort]`` (else the first of ``sorts``) then by ``key``, counted, in the database.
    ``items`` are the rows through ``view``; ``total`` counts every row that matches."""
    if listing.search:
        q = q.where(holds(search, listing.search))
    total = s.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
    sort = listing.sort if listing.sort in sorts else next(iter(sorts))
    column = sorts[sort]
    order = ((column.desc().nulls_last(), key.desc()) if listing.descending
             else (column.asc().nulls_last(), key.asc()))
    rows = s.scalars(q.order_by(*order).offset(listing.offset).limit(listing.limit)).all()
    return {"items": [view(r) for r in rows], "total": total, "offset": listing.offset, "limit": listing.limit,
            "sort": sort, "descending": listing.descending, "search": listing.search}


def _among_firsts(q: Select[Any], order: Any, count: int, any_of: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """``q`` restricted to the first ``count`` rows in ``order`` of each of ``any_of``'s conditions (with ``q``'s
    own): each is one short range of its index, however many rows of ``q`` meet none of them."""
    if not any_of:
        return q
    key = order.element
    firsts = [q.where(c).with_only_columns(key).order_by(order).limit(count).subquery() for c in any_of]
    return q.where(key.in_(union(*(select(f.c[0]) for f in firsts))))


def keyset(s: Session, q: Select[Any], key: Any, *, newest_first: bool, after: Any = None, before: Any = None,
           limit: int = 50, any_of: Sequence[ColumnElement[bool]] = ()) -> tuple[list[Any], bool, bool]:
    """One page of the rows of ``q`` along the indexed, time-ordered column ``key``, newest or oldest first: the
    rows past ``after``, or else the page just before ``before``. Returns the rows, whether more follow the last
    one and whether more come before the first one. ``any_of``: as for ``seek``."""
    limit = min(max(1, limit), MAX_PAGE)
    forward = before is None
    if forward and after is not None:
        q = q.where(key < after if newest_first else key > after)
    if not forward:
        q = q.where(key > before if newest_first else key < before)
    order = key.desc() if newest_first == forward else key.asc()
    rows = list(s.scalars(_among_firsts(q, order, limit + 1, any_of).order_by(order).limit(limit + 1)).all())
    extra = len(rows) > limit
    rows = rows[:limit]
    if forward:
        return rows, extra, after is not None
    rows.reverse()
    return rows, True, extra


def names_of(s: Session, column: Any, ids: Iterable[str | None], key: Any = None) -> dict[str, str]:
    """``{id: name}`` for the rows among ``ids`` (the column ``column`` of its table, e.g. ``Machine.name``)."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    key = column.class_.id if key is None else key
    return {k: v for k, v in s.execute(select(key, column).where(key.in_(wanted))).all()}


API_MAX_PAGE = 500
_ID = re.compile(r"[0-9a-f]{32}")


def id_cursor(cursor: str | None) -> str | None:
    """``cursor`` when it is an id (what an API list hands out as ``next_cursor``), else 400 ``malformed_cursor``."""
    if cursor is not None and not _ID.fullmatch(cursor):
        raise Malformed("the cursor is not one this list gave", code="malformed_cursor")
    return cursor


def seek(s: Session, q: Select[Any], key: Any, *, limit: int = 50, cursor: str | None = None,
         view: Callable[[Any], Any] | None = None,
         views: Callable[[list[Any]], list[dict[str, Any]]] | None = None,
         any_of: Sequence[ColumnElement[bool]] = ()) -> dict[str, Any]:
    """One page of an API list: the rows of ``q`` (a select of one table) past ``cursor`` in the order of the
    indexed, unique column ``key`` (an id, which sorts by creation time), ``limit`` of them (at most 500), read
    in the database (``limit + 1`` rows, to know whether more follow). ``items`` are the rows through ``view``
    (or all of them through ``views``); ``next_cursor`` is the last row's key while more follow, else None.

    ``any_of``: the rows must also meet one of these conditions, each served by an index that ends with ``key``
    (a caller who sees few rows of a large table): the page is read from each condition's own first ``limit + 1``
    rows, not by walking ``q``'s rows past the ones that meet none."""
    limit = min(max(1, limit), API_MAX_PAGE)
    if cursor is not None:
        q = q.where(key > cursor)
    rows = list(s.scalars(_among_firsts(q, key.asc(), limit + 1, any_of).order_by(key.asc()).limit(limit + 1)).all())
    more, rows = len(rows) > limit, rows[:limit]
    items = views(rows) if views is not None else [view(r) for r in rows] if view is not None else rows
    return {"items": items, "next_cursor": str(getattr(rows[-1], key.key)) if more and rows else None}


def id_filter(parameter: str, value: str | None) -> str | None:
    """A filter's id (``?connection=ID``), or 422 ``malformed_filter`` naming the parameter."""
    if value is not None and not _ID.fullmatch(value):
        raise RuleViolation(f"{parameter} is an id: 32 characters 0-9 and a-f", code="malformed_filter",
                            parameter=parameter)
    return value


def time_range(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` in UTC (a time without a zone is UTC), or 422 ``malformed_filter`` when ``until``
    is not after ``since``."""
    since, until = (None if t is None else t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
                    for t in (since, until))
    if since is not None and until is not None and until <= since:
        raise RuleViolation("until is after since", code="malformed_filter", parameter="until")
    return since, until


def id_at(at: datetime, later: timedelta = timedelta(0)) -> str:
    """The least id made at or after ``at`` + ``later``: an id begins with its creation time in nanoseconds, in
    16 hex characters (``persistence.tables.new_id``), so a range of creation times is a range of the primary
    key. Past the ids' range (or the calendar's), the greatest."""
    try:
        at = at + later
    except OverflowError:
        return "f" * 32
    return f"{min(max(0, int(at.timestamp() * 1_000_000) * 1000), 2**64 - 1):016x}{'0' * 16}"
