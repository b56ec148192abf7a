"""The figures service: every progress number a page, an export, an e-mail or the API shows.

Every figure of an organisation covers its whole subtree. The figures of many
organisations are computed together: a few queries grouped by ``org_id`` give each
organisation's own counts, then each count is added to the organisation's ancestors
(read from the materialised path) in Python. The dashboard's cards and table, the chart,
the printable report, the XLSX, the daily digest and ``GET /api/v1/progress`` all read
:func:`figures` or :func:`report_rows`, so they show the same numbers. A table lists the
top organisation's *own* row (its own employees and groups, not its children's), one row
per child and the total: own + children = total, always.

Definitions (used everywhere; nothing else decides these):

- **Deadline** of an organisation: the earliest deadline among the open waves (planned,
  active, paused) holding groups of its subtree — the next date someone must meet. Days
  left count calendar days in the configured zone (``MIGRATOR_TZ``).
- **Overdue**: a step not finished (not succeeded, skipped or paused) more than
  ``OVERDUE_GRACE_HOURS`` (a setting, default 24) after its due time; an open wave more than
  the same grace after its deadline. See :func:`step_overdue` / :func:`wave_overdue` and
  their SQL twins :func:`step_overdue_condition` / :func:`wave_overdue_condition`.
- **Needs attention**: the items the «Требует внимания» page lists, one query per section
  (``migrator.progress.attention``): failed steps, steps waiting for a confirmation, members
  Max refused, heads not in Max, chats where the bot was removed or lacks rights, flagged
  groups, overdue steps and overdue waves. A group counts in ``groups_attention`` while it
  is flagged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from operator import add
from typing import NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlmodel import select

from migrator.auth.service import scope_paths, scoped
from migrator.db import get_session, not_driving, utcnow
from migrator.engine.models import STEP_KINDS, STEP_STATUSES, Step
from migrator.groups.models import GroupMember, SourceGroup
from migrator.groups.states import in_chat_condition
from migrator.max.models import REQUIRED_PERMISSIONS, MaxChat
from migrator.org.models import Organisation
from migrator.people.models import Employee
from migrator.progress.models import ProgressSnapshot
from migrator.waves.models import Wave

log = logging.getLogger("migrator.progress")

DONE_STEP_STATUSES = ("succeeded", "skipped")
# Not overdue whatever their due time: finished, or deliberately paused by a coordinator.
NOT_OVERDUE_STATUSES = (*DONE_STEP_STATUSES, "paused")
# The other statuses: a step in one of them is overdue once its due time is past the grace.
# Listed rather than negated, so that the database reads one range of ``ix_step_status_due``
# per status.
OVERDUE_STATUSES = tuple(s for s in STEP_STATUSES if s not in NOT_OVERDUE_STATUSES)
OPEN_WAVE_STATUSES = ("planned", "active", "paused")

COUNTERS = ("employees", "linked", "groups_total", "groups_linked", "groups_done",
            "groups_attention", "members_total", "members_in_chat", "overdue_steps")


# --- definitions ------------------------------------------------------------------------------


def overdue_grace() -> timedelta:
    """How long after its due time an unfinished step (or an open wave) becomes overdue."""
    return timedelta(hours=current_app.config["OVERDUE_GRACE_HOURS"])


def step_overdue_condition(now: datetime):
    """SQL: the step is overdue at ``now``."""
    return sa.and_(Step.status.in_(OVERDUE_STATUSES), Step.due_at < now - overdue_grace())


def step_overdue(step, now: datetime | None = None) -> bool:
    """The step is overdue at ``now`` (the same rule as :func:`step_overdue_condition`)."""
    now = now or utcnow()
    return (step.status in OVERDUE_STATUSES and step.due_at is not None
            and step.due_at < now - overdue_grace())


def wave_overdue_condition(now: datetime):
    """SQL: the wave is open and its deadline passed more than the grace ago."""
    return sa.and_(Wave.status.in_(OPEN_WAVE_STATUSES), Wave.deadline < now - overdue_grace())


def wave_overdue(wave, now: datetime | None = None) -> bool:
    now = now or utcnow()
    status = wave["status"] if isinstance(wave, dict) else wave.status
    deadline = wave["deadline"] if isinstance(wave, dict) else wave.deadline
    return (status in OPEN_WAVE_STATUSES and deadline is not None
            and deadline < now - overdue_grace())


def member_in_chat_condition():
    """SQL: the membership is in the Max chat (counts towards coverage)."""
    return in_chat_condition()


def tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["MIGRATOR_TZ"])


def local_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(tz()).date()


def day_start(day: date) -> datetime:
    """The first instant of ``day`` in the configured zone, as aware UTC."""
    return datetime.combine(day, time(0), tzinfo=tz()).astimezone(UTC)


def days_left(deadline: datetime | None, now: datetime | None = None) -> int | None:
    """Whole days from today to the deadline's date, both in the configured zone."""
    if deadline is None:
        return None
    return (deadline.astimezone(tz()).date() - local_today(now)).days


def pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


class OrgRef(NamedTuple):
    """An organisation as a report row shows it: read as plain columns (a region's
    thousands of rows need no ORM objects)."""

    id: int
    code: str
    name: str
    parent_id: int | None
    path: str
    depth: int
    head_email: str | None

    @staticmethod
    def columns() -> tuple:
        return (Organisation.id, Organisation.code, Organisation.name, Organisation.parent_id,
                Organisation.path, Organisation.depth, Organisation.head_email)


@dataclass
class Row:
    """Figures of one organisation's subtree (or of a whole scope when ``org`` is None).

    With ``own`` set, the row holds only the organisation's own employees and groups (not
    its children's): the first row of a table under that organisation."""

    org: Organisation | OrgRef | None
    own: bool = False
    employees: int = 0
    linked: int = 0
    groups_total: int = 0
    groups_linked: int = 0
    groups_done: int = 0
    groups_attention: int = 0
    members_total: int = 0
    members_in_chat: int = 0
    overdue_steps: int = 0
    deadline: datetime | None = None
    days_left: int | None = None

    @property
    def linked_pct(self) -> float | None:
        return pct(self.linked, self.employees)

    @property
    def coverage_pct(self) -> float | None:
        return pct(self.members_in_chat, self.members_total)

    @property
    def done_pct(self) -> float | None:
        return pct(self.groups_done, self.groups_total)

    def add(self, counts: dict) -> None:
        """Add one organisation's own counts (called for thousands of rows: kept lean)."""
        values = self.__dict__
        for name, value in counts.items():
            if name == "deadline":  # the earliest open deadline (see the definitions)
                if value is not None and (self.deadline is None or value < self.deadline):
                    self.deadline = value
            else:
                values[name] += value

    def counts(self) -> dict:
        """The counters and the deadline, as :meth:`add` takes them."""
        values = self.__dict__
        return {**{name: values[name] for name in COUNTERS}, "deadline": self.deadline}

    def as_dict(self) -> dict:
        org = self.org
        return {
            "org_code": org.code if org else None,
            "org_name": org.name if org else None,
            "own": self.own,
            **{name: getattr(self, name) for name in COUNTERS},
            "linked_pct": self.linked_pct,
            "coverage_pct": self.coverage_pct,
            "done_pct": self.done_pct,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "days_left": self.days_left,
        }


# :func:`report_rows` builds rows positionally: the organisation, ``own``, the counters in
# the order of COUNTERS, the deadline.
assert tuple(f.name for f in fields(Row))[2:2 + len(COUNTERS)] == COUNTERS


@dataclass
class Figures(Row):
    """The dashboard's figures: totals, the children's rows and the breakdowns."""

    children: list[Row] = field(default_factory=list)
    # The organisation's own counts (None for a scope of several top organisations):
    # own + children = the totals of this object.
    own_row: Row | None = None
    # steps[kind][status] = number of groups whose step ``kind`` is in ``status``.
    steps: dict = field(default_factory=dict)
    groups_unplanned: int = 0
    chats: dict = field(default_factory=dict)  # status -> count
    chats_missing_rights: int = 0
    overdue_waves: int = 0
    waves: list[dict] = field(default_factory=list)  # open waves, nearest deadline first
    roots: list[Organisation] = field(default_factory=list)

    @property
    def overdue(self) -> int:
        return self.overdue_steps + self.overdue_waves

    @property
    def table(self) -> list[Row]:
        """The rows of the "by organisation" table, without the total: own row, children."""
        return ([self.own_row] if self.own_row is not None else []) + self.children

    @property
    def chats_total(self) -> int:
        return sum(self.chats.values())

    @property
    def nearest_wave(self) -> dict | None:
        """The open wave whose deadline is the deadline of these figures."""
        return self.waves[0] if self.waves else None

    def as_dict(self) -> dict:
        data = super().as_dict()
        data.update({
            "steps": self.steps,
            "groups_unplanned": self.groups_unplanned,
            "chats": self.chats,
            "chats_missing_rights": self.chats_missing_rights,
            "overdue_waves": self.overdue_waves,
            "waves": [{**w, "deadline": w["deadline"].isoformat() if w["deadline"] else None}
                      for w in self.waves],
            "own_row": self.own_row.as_dict() if self.own_row is not None else None,
            "children": [c.as_dict() for c in self.children],
        })
        return data


# --- scope ----------------------------------------------------------------------------


def visible_roots(user) -> list[Organisation] | None:
    """The top organisations ``user`` sees (scope roots), or ``None`` for the whole region."""
    paths = scope_paths(user)
    if paths is None:
        return None
    paths = sorted(set(paths), key=len)
    kept: list[str] = []
    for p in paths:  # drop scopes nested in another scope of the same user
        if not any(p.startswith(k) for k in kept):
            kept.append(p)
    if not kept:
        return []
    return list(get_session().exec(
        select(Organisation).where(Organisation.path.in_(kept)).order_by(Organisation.name)
    ).all())


def top_orgs(user) -> list[Organisation]:
    """The organisations the dashboard starts from: the region root(s) or the user's scopes."""
    roots = visible_roots(user)
    if roots is not None:
        return roots
    return list(get_session().exec(
        select(Organisation).where(Organisation.parent_id.is_(None)).order_by(Organisation.name)
    ).all())


def _subtree_filter(roots: list[Organisation] | None):
    """A condition on ``Organisation`` selecting the subtrees of ``roots`` (None: all)."""
    if roots is None:
        return sa.true()
    if not roots:
        return sa.false()
    return sa.or_(*[Organisation.path.startswith(r.path) for r in roots])


def _only_root(org: Organisation | None) -> bool:
    """``org`` is the region's only top organisation: its subtree is every organisation, so
    the counts need no subtree filter (which would make the database walk every group)."""
    return org is not None and org.parent_id is None and get_session().scalar(
        sa.select(sa.func.count()).select_from(Organisation)
        .where(Organisation.parent_id.is_(None))) == 1


def _org_ids(roots):
    return sa.select(Organisation.id).where(_subtree_filter(roots))


# --- per-organisation counts --------------------------------------------------------------


def own_counts(roots: list[Organisation] | None, cutoff: datetime | None = None,
               now: datetime | None = None) -> dict[int, dict]:
    """Each organisation's own counts (not its subtree's), for the subtrees of ``roots``.

    With ``cutoff`` the counts are as of that instant (for back-filled snapshots).
    """
    session = get_session()
    now = now or utcnow()
    counts: dict[int, dict] = defaultdict(dict)
    in_scope = None if roots is None else _org_ids(roots)

    def limit(q, col):
        return q if in_scope is None else q.where(col.in_(in_scope))

    # Employees and how many of them are linked to Max.
    if cutoff is None:
        linked = sa.func.count(Employee.max_user_id)
        q = sa.select(Employee.org_id, sa.func.count(), linked).group_by(Employee.org_id)
    else:
        linked = sa.func.sum(sa.case((sa.and_(Employee.max_user_id.is_not(None),
                                              Employee.linked_at < cutoff), 1), else_=0))
        q = (sa.select(Employee.org_id, sa.func.count(), linked)
             .where(Employee.created_at < cutoff).group_by(Employee.org_id))
    for org_id, n, n_linked in session.execute(limit(q, Employee.org_id)):
        counts[org_id].update(employees=n, linked=int(n_linked or 0))

    # Groups: total, mapped to a Max chat, flagged; live, also their members (counters kept
    # on the group) and, through each group's wave, the earliest deadline of the open waves
    # (grouped by wave too, so the few waves' deadlines are read once, not once per row).
    deadlines = {} if cutoff is not None else dict(session.execute(
        sa.select(Wave.id, Wave.deadline).where(Wave.status.in_(OPEN_WAVE_STATUSES))).all())
    grp = sa.select(
        SourceGroup.org_id, SourceGroup.wave_id, sa.func.count(),
        sa.func.count(SourceGroup.max_chat_id),
        sa.func.sum(sa.case((SourceGroup.needs_attention, 1), else_=0)),
        sa.func.sum(SourceGroup.member_count), sa.func.sum(SourceGroup.members_in_chat),
    ).group_by(SourceGroup.org_id, SourceGroup.wave_id)
    if cutoff is not None:
        grp = grp.where(SourceGroup.created_at < cutoff)
    for org_id, wave_id, n, n_linked, n_attention, n_members, n_in_chat in session.execute(
            limit(grp, SourceGroup.org_id)):
        c = counts[org_id]
        c["groups_total"] = c.get("groups_total", 0) + n
        c["groups_linked"] = c.get("groups_linked", 0) + n_linked
        c["groups_attention"] = c.get("groups_attention", 0) + int(n_attention or 0)
        if cutoff is None:
            c["members_total"] = c.get("members_total", 0) + int(n_members or 0)
            c["members_in_chat"] = c.get("members_in_chat", 0) + int(n_in_chat or 0)
            deadline = deadlines.get(wave_id)
            if deadline is not None and (c.get("deadline") is None or deadline < c["deadline"]):
                c["deadline"] = deadline
    if cutoff is not None:  # the mapping as of the cutoff
        q = (sa.select(SourceGroup.org_id, sa.func.count())
             .where(SourceGroup.linked_at < cutoff, SourceGroup.max_chat_id.is_not(None))
             .group_by(SourceGroup.org_id))
        for org_id, n in session.execute(limit(q, SourceGroup.org_id)):
            counts[org_id]["groups_linked"] = n

    # Groups cut over: their cutover step succeeded.
    # From the step side: the cut-over groups are one range of ``ix_step_kind_status_group``
    # (SQLite's planner would otherwise walk every group and look its step up).
    q = (sa.select(SourceGroup.org_id, sa.func.count()).select_from(Step)
         .join(SourceGroup, SourceGroup.id == not_driving(Step.group_id))
         .where(Step.kind == "cutover", Step.status == "succeeded")
         .group_by(SourceGroup.org_id))
    if cutoff is not None:
        q = q.where(Step.finished_at < cutoff)
    for org_id, n in session.execute(limit(q, SourceGroup.org_id)):
        counts[org_id]["groups_done"] = n

    # Memberships in the Max chat: live, the groups' counters (read above); as of a past
    # day, every membership and whether it was in the chat then.
    if cutoff is not None:
        in_chat = sa.and_(member_in_chat_condition(),
                          sa.func.coalesce(GroupMember.added_at, GroupMember.created_at) < cutoff)
        per_group = (sa.select(
            GroupMember.group_id.label("group_id"), sa.func.count().label("n"),
            sa.func.sum(sa.case((in_chat, 1), else_=0)).label("in_chat"),
        ).where(GroupMember.created_at < cutoff))
        if in_scope is not None:
            per_group = per_group.where(GroupMember.group_id.in_(
                sa.select(SourceGroup.id).where(SourceGroup.org_id.in_(in_scope))))
        per_group = per_group.group_by(GroupMember.group_id).subquery()
        q = (sa.select(SourceGroup.org_id, sa.func.sum(per_group.c.n),
                       sa.func.sum(per_group.c.in_chat))
             .join(per_group, per_group.c.group_id == SourceGroup.id)
             .group_by(SourceGroup.org_id))
        for org_id, n, n_in in session.execute(q):
            counts[org_id].update(members_total=int(n or 0), members_in_chat=int(n_in or 0))

    if cutoff is None:  # overdue steps, per organisation
        q = (sa.select(SourceGroup.org_id, sa.func.count()).select_from(Step)
             .join(SourceGroup, SourceGroup.id == not_driving(Step.group_id))
             .where(step_overdue_condition(now))
             .group_by(SourceGroup.org_id))
        for org_id, n in session.execute(limit(q, SourceGroup.org_id)):
            counts[org_id]["overdue_steps"] = n
    return counts


def _orgs(roots, max_depth: int | None = None) -> list:
    q = sa.select(Organisation.id, Organisation.path).where(_subtree_filter(roots))
    if max_depth is not None:
        q = q.where(Organisation.depth <= max_depth)
    return get_session().execute(q).all()


def rollup(paths: dict[int, str], counts: dict[int, dict],
           targets: dict[int, Row]) -> None:
    """Add each organisation's own ``counts`` to every target among its ancestors (itself
    included). ``paths`` maps org id → materialised path."""
    for org_id, c in counts.items():
        path = paths.get(org_id)
        if path is None:
            continue
        for part in path.strip("/").split("/"):
            row = targets.get(int(part))
            if row is not None:
                row.add(c)


# --- the public figures ---------------------------------------------------------------------


def figures(org: Organisation | None, user, now: datetime | None = None) -> Figures:
    """Figures of ``org``'s subtree (or of everything ``user`` sees when ``org`` is None),
    with one row per child organisation. The caller checks that ``user`` may see ``org``."""
    session = get_session()
    now = now or utcnow()
    if org is not None:
        roots = [org]
        children = list(session.exec(
            select(Organisation).where(Organisation.parent_id == org.id)
            .order_by(Organisation.name)).all())
    else:
        visible = visible_roots(user)
        roots = visible
        children = top_orgs(user)
    fig = Figures(org=org, roots=children if org is None else [org])
    child_rows = {c.id: Row(org=c) for c in children}
    if org is not None:
        fig.own_row = Row(org=org, own=True)
    if _only_root(org):
        roots = None  # the only region root: its subtree is everything, no filter needed
    counts = own_counts(roots, now=now)
    paths = dict(session.execute(sa.select(Organisation.id, Organisation.path)
                                 .where(_subtree_filter(roots))).all()) if counts else {}
    if org is not None:
        # Each count goes to the total and to the child on its path (one level below org).
        # The total is then the sum of those rows (anything else is added to it directly).
        level = org.depth + 1
        for org_id, c in counts.items():
            path = paths.get(org_id)
            if path is None:
                continue
            if org_id == org.id:
                fig.own_row.add(c)
                continue
            parts = path[1:-1].split("/")
            row = child_rows.get(int(parts[level])) if len(parts) > level else None
            (fig if row is None else row).add(c)
        for row in (fig.own_row, *child_rows.values()):
            fig.add(row.counts())
    else:  # every organisation counted lies under one of the top rows: they sum to the total
        rollup(paths, counts, child_rows)
        for row in child_rows.values():
            fig.add(row.counts())
    fig.children = [child_rows[c.id] for c in children]
    for row in [fig, *fig.table]:
        row.days_left = days_left(row.deadline, now)

    in_scope = None if roots is None else _org_ids(roots)

    def limit(q, col):
        return q if in_scope is None else q.where(col.in_(in_scope))

    # Groups by step and status; groups without a wave.
    fig.steps = {k: {s: 0 for s in STEP_STATUSES} for k in STEP_KINDS}
    q = sa.select(Step.kind, Step.status, sa.func.count()).group_by(Step.kind, Step.status)
    if in_scope is not None:
        q = q.join(SourceGroup, SourceGroup.id == Step.group_id).where(
            SourceGroup.org_id.in_(in_scope))
    for kind, status, n in session.execute(q):
        fig.steps.setdefault(kind, {})[status] = n
    q = sa.select(sa.func.count()).select_from(SourceGroup).where(SourceGroup.wave_id.is_(None))
    fig.groups_unplanned = session.scalar(limit(q, SourceGroup.org_id)) or 0

    # Max chats (the chats the chat list shows for this scope): by status, and those where
    # the bot lacks a right it needs.
    chats_here = chats_condition(in_scope)
    q = sa.select(MaxChat.status, sa.func.count()).where(chats_here).group_by(MaxChat.status)
    fig.chats = {"discovered": 0, "linked": 0, "removed": 0}
    for status, n in session.execute(q):
        fig.chats[status] = n
    q = (sa.select(sa.func.count()).select_from(MaxChat)
         .where(chats_here, missing_rights_condition()))
    fig.chats_missing_rights = session.scalar(q) or 0

    # Open waves touching the subtree, nearest deadline first; overdue waves.
    q = (sa.select(Wave.id, Wave.name, Wave.status, Wave.deadline,
                   sa.func.count(SourceGroup.id))
         .join(SourceGroup, SourceGroup.wave_id == Wave.id)
         .where(Wave.status.in_(OPEN_WAVE_STATUSES))
         .group_by(Wave.id, Wave.name, Wave.status, Wave.deadline)
         .order_by(Wave.deadline, Wave.id))
    waves = session.execute(limit(q, SourceGroup.org_id)).all()
    done = dict(session.execute(limit(
        sa.select(SourceGroup.wave_id, sa.func.count()).select_from(Step)
        .join(SourceGroup, SourceGroup.id == not_driving(Step.group_id))
        .where(Step.kind == "cutover", Step.status == "succeeded",
               SourceGroup.wave_id.in_([w.id for w in waves]))
        .group_by(SourceGroup.wave_id), SourceGroup.org_id)).all()) if waves else {}
    fig.waves = [
        {"id": w.id, "name": w.name, "status": w.status, "deadline": w.deadline,
         "days_left": days_left(w.deadline, now), "groups": w[4], "done": done.get(w.id, 0),
         "overdue": wave_overdue(w, now)}
        for w in waves
    ]
    fig.overdue_waves = sum(1 for w in fig.waves if w["overdue"])
    return fig


def totals(roots: list[Organisation], now: datetime | None = None) -> Row:
    """The figures of the subtrees of ``roots`` together, without a row per organisation
    (a part of the user's scope, e.g. a directive's scope as a coordinator sees it): the
    total :func:`report_rows` gives for the same roots."""
    now = now or utcnow()
    total = Row(org=roots[0] if len(roots) == 1 else None)
    if roots:
        for c in own_counts(roots, now=now).values():
            total.add(c)
    total.days_left = days_left(total.deadline, now)
    return total


def chats_condition(in_scope):
    """SQL: the chat belongs to the scope (``in_scope``: a SELECT of organisation ids, or
    None for everything): its organisation is there, or it serves one of its groups. The
    same rule as the chat list (``max.service.visible_chats_query``)."""
    if in_scope is None:
        return sa.true()
    serves = sa.exists().where(SourceGroup.max_chat_id == MaxChat.id,
                               SourceGroup.org_id.in_(in_scope))
    return sa.or_(MaxChat.org_id.in_(in_scope), serves)


@dataclass
class WaveRow:
    """A wave's figures over the groups the user may see (a coordinator: their own)."""

    wave_id: int
    groups: int = 0
    switched: int = 0  # groups whose cutover succeeded
    members_total: int = 0
    members_in_chat: int = 0
    failed_steps: int = 0
    overdue_steps: int = 0

    @property
    def coverage_pct(self) -> float | None:
        return pct(self.members_in_chat, self.members_total)

    @property
    def switched_pct(self) -> float | None:
        return pct(self.switched, self.groups)


def wave_rows(wave_ids: list[int], user, now: datetime | None = None) -> dict[int, WaveRow]:
    """The figures of each wave in ``wave_ids`` (a page of the wave list): one grouped query
    per figure, restricted to the groups ``user`` may see."""
    now = now or utcnow()
    rows = {i: WaveRow(wave_id=i) for i in wave_ids}
    if not rows:
        return rows
    session = get_session()
    in_waves = SourceGroup.wave_id.in_(list(rows))

    def run(q):
        return session.execute(scoped(q.where(in_waves), SourceGroup.org_id, user)
                               .group_by(SourceGroup.wave_id))

    for wave_id, n, members, in_chat in run(sa.select(
            SourceGroup.wave_id, sa.func.count(), sa.func.sum(SourceGroup.member_count),
            sa.func.sum(SourceGroup.members_in_chat))):
        row = rows[wave_id]
        row.groups, row.members_total, row.members_in_chat = (n, int(members or 0),
                                                              int(in_chat or 0))
    steps = (sa.select(SourceGroup.wave_id, sa.func.count()).select_from(Step)
             .join(SourceGroup, SourceGroup.id == not_driving(Step.group_id)))
    for wave_id, n in run(steps.where(Step.kind == "cutover", Step.status == "succeeded")):
        rows[wave_id].switched = n
    for wave_id, n in run(steps.where(Step.status == "failed")):
        rows[wave_id].failed_steps = n
    for wave_id, n in run(steps.where(step_overdue_condition(now))):
        rows[wave_id].overdue_steps = n
    return rows


def missing_rights_condition():
    """SQL: a chat that is not removed but where the bot lacks admin or a needed right."""
    perms = sa.func.coalesce(MaxChat.bot_permissions, "")
    lacks = [sa.not_(("," + perms + ",").contains(f",{p},")) for p in REQUIRED_PERMISSIONS]
    return sa.and_(MaxChat.status != "removed",
                   sa.or_(MaxChat.bot_is_admin.is_(False), *lacks))


def report_rows(org: Organisation | None, user, now: datetime | None = None,
                levels: int | None = None, own: bool = False) -> list[Row]:
    """First the total of the whole scope (``org`` or everything the user sees), then one
    row per organisation in tree order with its subtree figures. ``levels`` limits the rows
    to that many levels below the top (the figures still cover everything).

    With ``own`` (the printable report and the XLSX) ``org``'s row holds only its own
    employees and groups, so the total equals that own row plus the rows one level below
    (without ``org`` the top organisations sum to the total anyway)."""
    session = get_session()
    now = now or utcnow()
    roots = [org] if org is not None else visible_roots(user)
    q = sa.select(*OrgRef.columns()).where(_subtree_filter(roots))
    if levels is not None:
        top = org.depth if org is not None else min((r.depth for r in roots or []), default=0)
        q = q.where(Organisation.depth <= top + levels)
    orgs = list(map(OrgRef._make, session.execute(q)))
    if _only_root(org):
        roots = None  # everything: no subtree filter (as in :func:`figures`)
    counts = own_counts(roots, now=now)
    ordered = _tree_order(orgs)
    if levels is None:
        # Every organisation has a row: its own counts (a list in the order of COUNTERS)
        # and earliest deadline, to which (deepest first) each organisation adds itself to
        # its parent's once; the total is the sum of the top rows.
        zero = [0] * len(COUNTERS)
        sums = {o.id: zero for o in orgs}
        earliest: dict[int, datetime] = {}
        for org_id, c in counts.items():
            if org_id in sums:
                sums[org_id] = [c.get(name, 0) for name in COUNTERS]
                if c.get("deadline") is not None:
                    earliest[org_id] = c["deadline"]
        scope = zero
        for o in reversed(ordered):
            mine, deadline = sums[o.id], earliest.get(o.id)
            if o.parent_id in sums:
                sums[o.parent_id] = list(map(add, sums[o.parent_id], mine))
                target = o.parent_id
            else:
                scope = list(map(add, scope, mine))
                target = None
            if deadline is not None:
                current = earliest.get(target)
                if current is None or deadline < current:
                    earliest[target] = deadline
        rows = {o.id: Row(o, False, *sums[o.id], earliest.get(o.id)) for o in orgs}
        total = Row(org, False, *scope, earliest.get(None))
    else:
        rows = {o.id: Row(org=o) for o in orgs}
        total = Row(org=org)
        paths = dict(_orgs(roots)) if counts else {}
        rollup(paths, counts, rows)
        for org_id, c in counts.items():
            if org_id in paths:
                total.add(c)
    if own and org is not None:  # the top organisation's row: only its own counts
        own = rows[org.id] = Row(org=org, own=True)
        c = counts.get(org.id)
        if c:
            own.add(c)
    result = [total] + [rows[o.id] for o in ordered]
    zone, today = tz(), local_today(now)
    for row in result:  # as :func:`days_left`, with the zone and today looked up once
        if row.deadline is not None:
            row.days_left = (row.deadline.astimezone(zone).date() - today).days
    return result


def _tree_order(orgs: list[Organisation]) -> list[Organisation]:
    """Depth-first order, siblings by name (the path orders by id, not by name)."""
    by_parent: dict = defaultdict(list)
    ids = {o.id for o in orgs}
    for o in orgs:
        by_parent[o.parent_id if o.parent_id in ids else None].append(o)
    out: list[Organisation] = []
    stack = sorted(by_parent[None], key=lambda o: o.name, reverse=True)
    while stack:
        o = stack.pop()
        out.append(o)
        stack.extend(sorted(by_parent.get(o.id, []), key=lambda c: c.name, reverse=True))
    return out


def digest_rows(user, now: datetime | None = None) -> list[dict]:
    """Rows for the daily digest e-mail of ``user`` (same numbers as the dashboard): first
    the whole scope (the user's single top organisation, or all of them), then the top
    organisation's own row (``own``: true) and one row per organisation one level below —
    the dashboard's table. Each row is :meth:`Row.as_dict`; the first row also has
    ``overdue_waves``."""
    tops = top_orgs(user)
    fig = figures(tops[0] if len(tops) == 1 else None, user, now=now)
    first = Row.as_dict(fig)
    first["org_name"] = first["org_name"] or "*"
    first["overdue_waves"] = fig.overdue_waves
    return [first, *(c.as_dict() for c in fig.table)]


# --- snapshots --------------------------------------------------------------------------------


def take_snapshots(day: date | None = None, commit: bool = True) -> int:
    """Store every organisation's subtree figures for ``day`` (default: today in the
    configured zone), replacing that day's earlier snapshot. A past day is computed as of
    the end of that day (from linked_at / added_at / finished_at). Returns the row count."""
    session = get_session()
    today = local_today()
    day = day or today
    cutoff = None if day >= today else day_start(day + timedelta(days=1))
    orgs = session.execute(sa.select(Organisation.id, Organisation.path)).all()
    rows = {org_id: Row(org=None) for org_id, _ in orgs}
    rollup(dict(orgs), own_counts(None, cutoff=cutoff), rows)
    session.execute(sa.delete(ProgressSnapshot).where(ProgressSnapshot.day == day))
    values = [
        {"org_id": org_id, "day": day, "employees": r.employees, "linked": r.linked,
         "groups_total": r.groups_total, "groups_done": r.groups_done,
         "members_total": r.members_total, "members_in_chat": r.members_in_chat,
         "created_at": utcnow()}
        for org_id, r in rows.items()
    ]
    for i in range(0, len(values), 2000):
        session.execute(sa.insert(ProgressSnapshot), values[i:i + 2000])
    if commit:
        session.commit()
    log.debug("progress snapshots for %s: %d organisations", day, len(values))
    return len(values)


def history(org: Organisation | None, user, days: int = 60) -> list[dict]:
    """Daily snapshot figures of ``org`` (or of the user's top organisations summed)."""
    session = get_session()
    ids = [org.id] if org is not None else [o.id for o in top_orgs(user)]
    if not ids:
        return []
    since = local_today() - timedelta(days=days)
    q = (sa.select(ProgressSnapshot.day, sa.func.sum(ProgressSnapshot.employees),
                   sa.func.sum(ProgressSnapshot.linked),
                   sa.func.sum(ProgressSnapshot.groups_total),
                   sa.func.sum(ProgressSnapshot.groups_done),
                   sa.func.sum(ProgressSnapshot.members_total),
                   sa.func.sum(ProgressSnapshot.members_in_chat))
         .where(ProgressSnapshot.org_id.in_(ids), ProgressSnapshot.day >= since)
         .group_by(ProgressSnapshot.day).order_by(ProgressSnapshot.day))
    out = []
    for day, emp, linked, gt, gd, mt, mi in session.execute(q):
        out.append({"day": day, "employees": int(emp or 0), "linked": int(linked or 0),
                    "groups_total": int(gt or 0), "groups_done": int(gd or 0),
                    "members_total": int(mt or 0), "members_in_chat": int(mi or 0),
                    "linked_pct": pct(int(linked or 0), int(emp or 0)) or 0.0,
                    "coverage_pct": pct(int(mi or 0), int(mt or 0)) or 0.0})
    return out


def with_live_today(points: list[dict], fig: Figures) -> list[dict]:
    """The history with today's point replaced by the live figures the cards show (a
    snapshot of today may be hours old)."""
    today = local_today()
    live = {"day": today, "employees": fig.employees, "linked": fig.linked,
            "groups_total": fig.groups_total, "groups_done": fig.groups_done,
            "members_total": fig.members_total, "members_in_chat": fig.members_in_chat,
            "linked_pct": pct(fig.linked, fig.employees) or 0.0,
            "coverage_pct": pct(fig.members_in_chat, fig.members_total) or 0.0}
    return [p for p in points if p["day"] != today] + [live]
