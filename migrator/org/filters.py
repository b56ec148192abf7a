"""Filters shared by the list pages: by organisation (``?org=CODE&sub=0|1``) and by text."""

from __future__ import annotations

import sqlalchemy as sa
from flask import request
from sqlmodel import select

from migrator.auth.service import require_org, scoped
from migrator.db import get_engine, get_session, is_sqlite
from migrator.org.models import Organisation
from migrator.org.service import subtree_ids


def org_options() -> list[tuple[str, str, int]]:
    """``(code, name, depth)`` of the organisations in scope, in tree order, for filters."""
    rows = get_session().execute(
        scoped(sa.select(Organisation.code, Organisation.name, Organisation.depth),
               Organisation.id).order_by(Organisation.path)
    ).all()
    return [tuple(r) for r in rows]


def org_filter(query, org_id_column):
    """Apply ``?org=CODE&sub=0|1`` (default: with subordinate organisations).

    Returns ``(query, organisation or None)``; an organisation outside the scope is a 404.
    """
    code = request.args.get("org", "").strip()
    if not code:
        return query, None
    org = require_org(get_session().exec(
        select(Organisation).where(Organisation.code == code)).first())
    if request.args.get("sub", "1") == "0":
        return query.where(org_id_column == org.id), org
    return query.where(org_id_column.in_(subtree_ids(org))), org


def text_filter(text: str, *columns):
    """Case-insensitive "contains" ``text`` in any of ``columns``.

    SQLite folds the case of ASCII letters only, so there the usual capitalisations of a
    Cyrillic search ("иван", "Иван", "ИВАН") are tried as well.
    """
    variants = {text}
    if is_sqlite(get_engine()):
        variants |= {text.lower(), text.upper(), text.capitalize(), text.title()}
    return sa.or_(*[c.icontains(v, autoescape=True) for c in columns for v in variants])
