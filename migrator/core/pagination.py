"""Server-side pagination and sorting for list pages."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import request, url_for

from migrator.core.params import int_arg
from migrator.db import get_session

MAX_PAGE = 1_000_000  # a page number beyond any list (an OFFSET the database still takes)


@dataclass
class Page:
    items: list
    total: int
    number: int
    per_page: int
    sort: str = ""
    desc: bool = False
    args: dict = field(default_factory=dict)
    # True when counting stopped at ``count_limit``: ``total`` is a lower bound ("1000+").
    capped: bool = False

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        if self.capped:  # the real total is unknown: a full page may have a next one
            return len(self.items) == self.per_page
        return self.number < self.pages

    def url(self, number: int) -> str:
        args = {**self.args, "page": number}
        return url_for(request.endpoint, **(request.view_args or {}), **args)

    def sort_url(self, key: str) -> str:
        desc = not self.desc if self.sort == key else False
        args = {**self.args, "sort": key, "desc": int(desc), "page": 1}
        return url_for(request.endpoint, **(request.view_args or {}), **args)


def paginate(query, *, sorts: dict, default_sort: str, per_page: int = 50,
             count_query=None, count_limit: int | None = None, tiebreak=()) -> Page:
    """Apply ``?page=&sort=&desc=`` from the request to a SELECT and run it.

    ``sorts`` maps the allowed sort keys to a column, or to a tuple of columns whose later
    members break the ties of the first (all in the same direction); unknown keys fall back
    to the default. ``tiebreak``: columns ordering rows with equal sort values (a primary
    key), so no row is shown on two pages or on none.
    ``count_limit``: count at most that many rows (a ``LIMIT`` inside the count's subquery,
    so a search over a large table stops early); more matches make ``page.capped`` true and
    ``page.total`` equal to ``count_limit``. A ``count_query`` given with it must select the
    rows to count (it is wrapped and limited), not a ``COUNT(*)``.
    """
    args = {k: v for k, v in request.args.items() if k not in ("page",) and v != ""}
    sort = request.args.get("sort", default_sort)
    if sort not in sorts:
        sort = default_sort
    desc = request.args.get("desc") == "1"
    number = int_arg("page", 1, lo=1, hi=MAX_PAGE, strict=False)
    session = get_session()
    capped = False
    if count_limit is not None:
        rows_query = query if count_query is None else count_query
        limited = rows_query.order_by(None).limit(count_limit + 1).subquery()
        total = session.scalar(sa.select(sa.func.count()).select_from(limited)) or 0
        if total > count_limit:
            total, capped = count_limit, True
    else:
        if count_query is None:
            count_query = sa.select(sa.func.count()).select_from(
                query.order_by(None).subquery())
        total = session.scalar(count_query) or 0
    cols = sorts[sort] if isinstance(sorts[sort], tuple) else (sorts[sort],)
    order = [*(col.desc() if desc else col.asc() for col in cols), *tiebreak]
    rows = session.execute(
        query.order_by(*order).limit(per_page).offset((number - 1) * per_page)
    ).all()
    items = [r[0] if len(r) == 1 else r for r in rows]
    return Page(items, total, number, per_page, sort, desc, args, capped)
