"""Reading the audit trail: filters, scope, keyset pages by ``seq``, streamed exports.

No OFFSET and no COUNT(*): a page is "the next n events below (or above) a cursor seq". A
filter on a small set of values (the organisations of a coordinator's scope, the actions
matching a prefix, an actor) becomes one index range scan per value — ``WHERE x = v AND
seq < cursor ORDER BY seq DESC LIMIT n`` on an ``(x, seq)`` index — merged, so the work is
bounded by the page size whatever the table size.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from migrator.audit.labels import action_text
from migrator.audit.models import AuditEvent
from migrator.audit.service import _ts
from migrator.auth.service import scope_org_ids_subquery
from migrator.db import get_session
from migrator.org.models import Organisation

T = AuditEvent.__table__
BRANCH_LIMIT = 64  # above this many values, a plain filtered scan of seq is used instead


@dataclass
class AuditFilter:
    """What the user asked for (all optional); dates are local dates in MIGRATOR_TZ."""

    date_from: date | None = None
    date_to: date | None = None  # inclusive
    actor: str | None = None  # e-mail, user id or job name
    action: str | None = None  # prefix: "group." or "group.link"
    org: str | None = None  # organisation code: that organisation and its subtree
    object_type: str | None = None
    object_id: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args) -> AuditFilter:
        f = cls()
        for name, attr in (("from", "date_from"), ("to", "date_to")):
            raw = (args.get(name) or "").strip()
            if raw:
                try:
                    setattr(f, attr, date.fromisoformat(raw))
                except ValueError:
                    f.errors.append(name)
        for name in ("actor", "action", "org", "object_type", "object_id"):
            value = (args.get(name) or "").strip()[:200]
            setattr(f, name, value or None)
        if f.actor and "@" in f.actor:
            f.actor = f.actor.lower()
        return f

    def args(self) -> dict:
        """The filter as query-string arguments (for links and exports)."""
        out = {"from": self.date_from.isoformat() if self.date_from else None,
               "to": self.date_to.isoformat() if self.date_to else None,
               "actor": self.actor, "action": self.action, "org": self.org,
               "object_type": self.object_type, "object_id": self.object_id}
        return {k: v for k, v in out.items() if v}


@dataclass
class Plan:
    """A filter resolved against the database and the user's scope."""

    conditions: list
    branches: list[list]  # one entry per index range scan; [[]] = a single scan
    empty: bool = False


def scope_org_ids(user) -> list[int] | None:
    """Organisation ids the user may see audit events of (``None``: all)."""
    sub = scope_org_ids_subquery(user)
    return None if sub is None else list(get_session().scalars(sub))


def _local_midnight_utc(day: date) -> datetime:
    tz = ZoneInfo(current_app.config["MIGRATOR_TZ"])
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


DISTINCT_ACTIONS_SQL = sa.text("""
WITH RECURSIVE a(v) AS (
  SELECT MIN(action) FROM audit_event
  UNION ALL
  SELECT (SELECT MIN(action) FROM audit_event WHERE action > a.v) FROM a WHERE a.v IS NOT NULL
)
SELECT v FROM a WHERE v IS NOT NULL LIMIT 2000
""")


def distinct_actions() -> list[str]:
    """Every action name in the trail: a loose index scan, one seek per distinct action."""
    return list(get_session().scalars(DISTINCT_ACTIONS_SQL))


def _values(raw: str | None) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in (raw or "").split(",") if v.strip()))[:8]


SAMPLE_SIZE = 2000


def _action_scan_is_cheaper(org_ids: list[int], actions: list[str]) -> bool:
    """Both filters can drive the scan: estimate which one reads fewer index entries.

    A scan driven by the organisations reads about ``len(org_ids) / share(actions)`` entries
    per event found, one driven by the actions ``len(actions) / share(orgs)``; the shares
    come from the latest events (one short index scan).
    """
    sample = get_session().execute(
        sa.select(T.c.action, T.c.org_id).order_by(T.c.seq.desc()).limit(SAMPLE_SIZE)).all()
    if not sample:
        return False
    orgs, acts = set(org_ids), set(actions)
    org_share = sum(1 for r in sample if r.org_id in orgs) / len(sample)
    act_share = sum(1 for r in sample if r.action in acts) / len(sample)
    floor = 1 / (10 * len(sample))  # "not seen lately" is rare, not impossible
    return len(actions) / max(org_share, floor) < len(org_ids) / max(act_share, floor)


def plan(f: AuditFilter, user) -> Plan:
    """Turn a filter and the user's scope into SQL conditions and index branches."""
    session = get_session()
    conds: list = []
    org_ids = scope_org_ids(user)
    if f.org:
        org = session.scalar(sa.select(Organisation).where(Organisation.code == f.org))
        if org is None:
            return Plan([], [], empty=True)
        subtree = set(session.scalars(
            sa.select(Organisation.id).where(Organisation.path.startswith(org.path))))
        org_ids = sorted(subtree if org_ids is None else subtree & set(org_ids))
    if org_ids is not None and not org_ids:
        return Plan([], [], empty=True)

    if f.date_from or f.date_to:
        # created_at never decreases along seq (it is taken under the chain head's lock),
        # so a period is a seq range: two index lookups on created_at.
        if f.date_from:
            start = _local_midnight_utc(f.date_from)
            conds.append(T.c.created_at >= start)
            lo = session.scalar(sa.select(T.c.seq).where(T.c.created_at >= start)
                                .order_by(T.c.created_at, T.c.seq).limit(1))
            if lo is None:
                return Plan([], [], empty=True)
            conds.append(T.c.seq >= lo)
        if f.date_to:
            end = _local_midnight_utc(f.date_to + timedelta(days=1))
            conds.append(T.c.created_at < end)
            hi = session.scalar(sa.select(T.c.seq).where(T.c.created_at < end)
                                .order_by(T.c.created_at.desc(), T.c.seq.desc()).limit(1))
            if hi is None:
                return Plan([], [], empty=True)
            conds.append(T.c.seq <= hi)

    # Object type and id each accept several values separated by commas ("chat,max_chat").
    types = _values(f.object_type)
    ids = _values(f.object_id)
    if types and not ids:
        conds.append(T.c.object_type.in_(types))
    if ids and not types:
        conds.append(T.c.object_id.in_(ids))

    actions = None
    if f.action:
        known = distinct_actions()
        actions = [a for a in known if a.startswith(f.action)]
        if not actions and len(known) < 2000:
            return Plan([], [], empty=True)
    # Pick the most selective filter that has an (x, seq) index to drive the scan; the
    # others become plain conditions checked along it.
    branches: list[list] = [[]]
    actor_cond = None
    if f.actor:
        actor_cond = sa.or_(T.c.actor_id == f.actor, T.c.actor_label == f.actor)
    if types and ids:  # ix_audit_object (object_type, object_id, seq)
        branches = [[T.c.object_type == t, T.c.object_id == i] for t in types for i in ids]
    elif f.actor:
        branches, actor_cond = [[T.c.actor_id == f.actor], [T.c.actor_label == f.actor]], None
    elif (org_ids is not None and len(org_ids) <= BRANCH_LIMIT
          and not (actions and len(actions) <= BRANCH_LIMIT
                   and _action_scan_is_cheaper(org_ids, actions))):
        branches, org_ids = [[T.c.org_id == i] for i in org_ids], None
    elif actions and len(actions) <= BRANCH_LIMIT:
        branches, actions = [[T.c.action == a] for a in actions], None

    if actor_cond is not None:
        conds.append(actor_cond)
    if org_ids is not None:
        conds.append(T.c.org_id.in_(org_ids))
    if f.action and actions is not None:
        conds.append(T.c.action.in_(actions) if actions
                     else T.c.action.startswith(f.action, autoescape=True))
    return Plan(conds, branches)


def seqs(p: Plan, *, below: int | None = None, above: int | None = None,
         ascending: bool = False, limit: int = 50) -> list[int]:
    """The seqs of up to ``limit`` matching events next to a cursor, in the given order."""
    if p.empty:
        return []
    bounds = list(p.conditions)
    if below is not None:
        bounds.append(T.c.seq < below)
    if above is not None:
        bounds.append(T.c.seq > above)
    order = T.c.seq.asc() if ascending else T.c.seq.desc()
    selects = [sa.select(T.c.seq).where(*bounds, *b).order_by(order).limit(limit)
               for b in p.branches]
    session = get_session()
    if len(selects) == 1:
        return list(session.scalars(selects[0]))
    union = sa.union(*[sa.select(s.subquery().c.seq) for s in selects]).subquery()
    outer = union.c.seq.asc() if ascending else union.c.seq.desc()
    return list(session.scalars(sa.select(union.c.seq).order_by(outer).limit(limit)))


def load(seq_list: list[int], *, ascending: bool = False) -> list:
    """Event rows (Core rows with the table's columns) for the given seqs."""
    if not seq_list:
        return []
    order = T.c.seq.asc() if ascending else T.c.seq.desc()
    return list(get_session().execute(sa.select(T).where(T.c.seq.in_(seq_list)).order_by(order)))


@dataclass
class KeysetPage:
    events: list
    older: int | None  # pass as ?before=
    newer: int | None  # pass as ?after=


def keyset_page(p: Plan, *, before: int | None = None, after: int | None = None,
                per_page: int = 50) -> KeysetPage:
    """Newest first. ``before``: the page below that seq; ``after``: the page above it."""
    if after is not None:
        found = seqs(p, above=after, ascending=True, limit=per_page + 1)
        has_newer = len(found) > per_page
        found = found[:per_page]
        events = load(found)
        has_older = bool(found) and bool(seqs(p, below=found[0], limit=1))
    else:
        found = seqs(p, below=before, limit=per_page + 1)
        has_older = len(found) > per_page
        found = found[:per_page]
        events = load(found)
        has_newer = before is not None and bool(
            seqs(p, above=found[0] if found else before - 1, ascending=True, limit=1))
    return KeysetPage(events,
                      older=events[-1].seq if events and has_older else None,
                      newer=events[0].seq if events and has_newer else None)


def first_seq_since(moment: datetime) -> int | None:
    """The first event at or after ``moment`` (aware), or ``None``."""
    return get_session().scalar(sa.select(T.c.seq).where(T.c.created_at >= moment)
                                .order_by(T.c.created_at, T.c.seq).limit(1))


def iter_events(p: Plan, *, after: int = 0, batch: int = 1000) -> Iterator:
    """Every matching event, oldest first, in keyset batches; each batch is a short read."""
    session = get_session()
    while True:
        found = seqs(p, above=after, ascending=True, limit=batch)
        rows = load(found, ascending=True)
        session.rollback()  # end the read transaction (SQLite holds a lock during one)
        if not rows:
            return
        yield from rows
        if len(found) < batch:
            return
        after = found[-1]


# --- serialisation --------------------------------------------------------------------


def event_dict(ev) -> dict:
    """An event as JSON-ready data (the API and the JSONL export)."""
    try:
        summary = json.loads(ev.summary)
    except ValueError:
        summary = ev.summary
    return {"seq": ev.seq, "created_at": _ts(ev.created_at), "actor_type": ev.actor_type,
            "actor_id": ev.actor_id, "actor_label": ev.actor_label, "action": ev.action,
            "object_type": ev.object_type, "object_id": ev.object_id, "org_id": ev.org_id,
            "summary": summary, "request_id": ev.request_id, "client_ip": ev.client_ip,
            "prev_hash": ev.prev_hash, "hash": ev.hash}


CSV_COLUMNS = ("seq", "time_local", "created_at", "actor_type", "actor_id", "actor_label",
               "action", "object_type", "object_id", "org_id", "org_code", "summary",
               "request_id", "client_ip", "prev_hash", "hash")
# The header row people see in Excel (the columns above, in order, plus the action's phrase)
CSV_HEADERS = {
    "seq": _l("No."), "time_local": _l("Time (%(tz)s)"), "created_at": _l("Time, UTC (hashed)"),
    "actor_type": _l("Actor type"), "actor_id": _l("Actor id"), "actor_label": _l("Actor"),
    "action": _l("Action code"), "object_type": _l("Object type"), "object_id": _l("Object id"),
    "org_id": _l("Organisation id"), "org_code": _l("Organisation code"),
    "summary": _l("Details"), "request_id": _l("Request id"), "client_ip": _l("Client address"),
    "prev_hash": _l("Previous event's hash"), "hash": _l("Hash"),
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP: prefix with ')."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_chunks(rows, org_codes: dict[int, str], tz_name: str = "") -> Iterator[str]:
    """UTF-8 CSV with a BOM and ``;`` (what Excel in a Russian locale opens directly), headed
    in the reader's language; ``tz_name`` names the zone of the local time column."""
    tz = ZoneInfo(current_app.config["MIGRATOR_TZ"])
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow([str(CSV_HEADERS[c]) % {"tz": tz_name} if c == "time_local"
                     else str(CSV_HEADERS[c]) for c in CSV_COLUMNS] + [str(_l("Action"))])
    yield "\ufeff" + buf.getvalue()
    buf.seek(0)
    buf.truncate()
    for n, ev in enumerate(rows, 1):
        org_code = org_codes.get(ev.org_id) if ev.org_id is not None else None
        writer.writerow([
            ev.seq, ev.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            _ts(ev.created_at), *[safe_cell(getattr(ev, c)) for c in CSV_COLUMNS[3:9]],
            ev.org_id if ev.org_id is not None else "", safe_cell(org_code),
            *[safe_cell(getattr(ev, c)) for c in CSV_COLUMNS[11:]],
            action_text(ev.action) or "",
        ])
        if n % 500 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue()


def jsonl_chunks(rows) -> Iterator[str]:
    lines = []
    for ev in rows:
        lines.append(json.dumps(event_dict(ev), ensure_ascii=False))
        if len(lines) >= 500:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"
