"""The employee search: the full name contains the text (any case) or the e-mail starts
with it.

PostgreSQL: ``ILIKE``, served by the trigram GIN indexes of migration 0009 when pg_trgm is
installed. SQLite: its ``LIKE`` ignores the case of ASCII letters only, so the usual
capitalisations of a Cyrillic search ("иван", "Иван", "ИВАН") are tried (``like_filter``).
Those ``LIKE`` conditions read every row; on SQLite the FTS5 trigram index of migration 0039
(``employee_fts``) first narrows the rows down to a few candidates, and the same ``LIKE``
conditions then decide among them, so the matches, their order and their count are the
same with or without the index.
"""

from __future__ import annotations

import sqlalchemy as sa

from migrator.db import get_engine, get_session, is_sqlite
from migrator.people.models import Employee

FTS_TABLE = "employee_fts"
# The trigram index finds texts of three characters or more; shorter ones are a scan.
FTS_MIN_CHARS = 3
# Beyond this many candidates the matches are dense: the plain scan in name order finds a
# page of them (and the capped count its 1,000) after a few rows, faster than sorting the
# candidates.
FTS_CANDIDATE_LIMIT = 2000
# Characters whose case the trigram index folds exactly as ``str.lower`` does: variants of a
# text made of these characters only fold to one phrase, searched once.
_SIMPLE_CASE = frozenset(
    [chr(c) for c in range(0x20, 0x7F)]
    + [chr(c) for c in range(0x410, 0x450)] + ["Ё", "ё"])


def like_escape(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def name_variants(text: str) -> list[str]:
    """The capitalisations of ``text`` that SQLite's ``LIKE`` is given."""
    return sorted({text, text.lower(), text.upper(), text.capitalize(), text.title()})


def like_filter(text: str):
    """The search as ``LIKE`` conditions alone (a scan on SQLite)."""
    email = Employee.email.like(like_escape(text.lower()) + "%", escape="/")
    if is_sqlite(get_engine()):
        return sa.or_(*[Employee.full_name.like(f"%{like_escape(v)}%", escape="/")
                        for v in name_variants(text)], email)
    return sa.or_(Employee.full_name.ilike(f"%{like_escape(text)}%", escape="/"), email)


def search_filter(text: str):
    """The WHERE condition of a search for ``text``: ``like_filter``, on SQLite restricted
    to the candidates of the full-text index when there are few of them."""
    plain = like_filter(text)
    if not is_sqlite(get_engine()):
        return plain
    ids = fts_candidates(text)
    if ids is None:
        return plain
    return sa.and_(Employee.id.in_(ids), plain)


def fts_phrases(text: str) -> list[str] | None:
    """The phrases to look up in the trigram index, one per distinct case folding of the
    variants, or None when the index cannot serve ``text`` (too short, or a NUL)."""
    if "\x00" in text:
        return None
    phrases = {}
    for v in name_variants(text):
        phrases.setdefault(v.lower() if set(v) <= _SIMPLE_CASE else v, v)
    if any(len(p) < FTS_MIN_CHARS for p in phrases.values()):
        return None
    return sorted(phrases.values())


def fts_candidates(text: str, limit: int = FTS_CANDIDATE_LIMIT) -> list[int] | None:
    """Ids of the employees whose name may contain ``text`` (the index folds case, so this
    is a superset of the ``LIKE`` matches) or whose e-mail starts with it, in any scope;
    None when the index is missing, cannot serve ``text``, or finds more than ``limit``."""
    phrases = fts_phrases(text)
    if phrases is None:
        return None
    session = get_session()
    if session.scalar(sa.text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n"),
                      {"n": FTS_TABLE}) is None:
        return None
    fts = sa.table(FTS_TABLE, sa.column("rowid"), sa.column(FTS_TABLE))
    match = " OR ".join('"' + p.replace('"', '""') + '"' for p in phrases)
    names = sa.select(fts.c.rowid).where(fts.c[FTS_TABLE].op("MATCH")(match))
    # ix_employee_email_nocase serves this prefix (migration 0039).
    emails = sa.select(Employee.id).where(
        Employee.email.like(like_escape(text.lower()) + "%", escape="/"))
    ids = session.scalars(sa.union_all(names, emails).limit(limit + 1)).all()
    if len(ids) > limit:
        return None
    return sorted(set(ids))
