"""The four directive metrics of each organisation's subtree, from the progress figures.

Employees, members and groups come from :mod:`migrator.progress.service` (the dashboard's
figures and its daily snapshots); heads of organisations linked to Max are counted here
from each organisation's ``head_email`` and the employee with that address.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from migrator.db import get_session
from migrator.directives.models import METRICS
from migrator.org.models import Organisation
from migrator.people.models import Employee
from migrator.progress import service as progress
from migrator.progress.models import ProgressSnapshot


@dataclass
class Facts:
    """One organisation's subtree (or several subtrees together, ``org`` then None): the
    dashboard's row plus the heads."""

    org: Organisation | None
    row: progress.Row
    heads_total: int = 0
    heads_linked: int = 0

    def parts(self, metric: str) -> tuple[int, int]:
        """``(done, total)`` of ``metric``."""
        r = self.row
        return {
            "heads": (self.heads_linked, self.heads_total),
            "employees": (r.linked, r.employees),
            "members": (r.members_in_chat, r.members_total),
            "groups": (r.groups_done, r.groups_total),
        }[metric]

    def percent(self, metric: str) -> float | None:
        done, total = self.parts(metric)
        return progress.pct(done, total)


def _heads_query(roots: list[Organisation], cutoff=None):
    """Per organisation: (org id, path, has a head, head linked)."""
    linked = Employee.max_user_id.is_not(None)
    if cutoff is not None:
        linked = sa.and_(linked, Employee.linked_at < cutoff)
    return (sa.select(Organisation.id, Organisation.path,
                      sa.case((linked, 1), else_=0))
            .outerjoin(Employee, Employee.email == Organisation.head_email)
            .where(Organisation.head_email.is_not(None),
                   sa.or_(*[Organisation.path.startswith(r.path) for r in roots])
                   if roots else sa.false()))


def heads(roots: list[Organisation]) -> tuple[dict[int, str], dict[int, dict]]:
    """Each organisation's own head counts (``heads_total``, ``heads_linked``)."""
    paths, counts = {}, {}
    for org_id, path, is_linked in get_session().execute(_heads_query(roots)):
        paths[org_id] = path
        counts[org_id] = {"heads_total": 1, "heads_linked": int(is_linked)}
    return paths, counts


def subtree_facts(roots: list[Organisation], user) -> list[Facts]:
    """A :class:`Facts` per organisation in the subtrees of ``roots`` (tree order), each
    covering its whole subtree, with the same figures the dashboard shows."""
    out: list[Facts] = []
    seen: set[int] = set()
    for root in roots:
        for row in progress.report_rows(root, user)[1:]:
            if row.org.id not in seen:
                seen.add(row.org.id)
                out.append(Facts(org=row.org, row=row))
    by_id = {f.org.id: f for f in out}
    paths, counts = heads(roots)
    for org_id, c in counts.items():
        for part in paths[org_id].strip("/").split("/"):
            target = by_id.get(int(part))
            if target is not None:
                target.heads_total += c["heads_total"]
                target.heads_linked += c["heads_linked"]
    return out


def scope_facts(roots: list[Organisation], now=None) -> Facts:
    """One :class:`Facts` for the subtrees of ``roots`` together (a directive's scope as a
    user sees it): the figures service's total and the heads, a few grouped queries."""
    facts = Facts(org=roots[0] if len(roots) == 1 else None,
                  row=progress.totals(roots, now=now))
    _paths, counts = heads(roots)
    facts.heads_total = sum(c["heads_total"] for c in counts.values())
    facts.heads_linked = sum(c["heads_linked"] for c in counts.values())
    return facts


def history(roots: list[Organisation], since: date, today: date, live: Facts | None) -> dict:
    """``{metric: [(day, percent), ...]}`` for the subtrees of ``roots`` together (roots that
    do not nest, as :func:`migrator.progress.service.visible_roots` gives them) from the
    daily snapshots since ``since``, ending with today's live figures (``live``)."""
    session = get_session()
    series: dict[str, list] = {m: [] for m in METRICS}
    if not roots:
        return series
    rows = session.execute(
        sa.select(ProgressSnapshot.day, sa.func.sum(ProgressSnapshot.employees),
                  sa.func.sum(ProgressSnapshot.linked),
                  sa.func.sum(ProgressSnapshot.members_total),
                  sa.func.sum(ProgressSnapshot.members_in_chat),
                  sa.func.sum(ProgressSnapshot.groups_total),
                  sa.func.sum(ProgressSnapshot.groups_done))
        .where(ProgressSnapshot.org_id.in_([r.id for r in roots]),
               ProgressSnapshot.day >= since, ProgressSnapshot.day < today)
        .group_by(ProgressSnapshot.day).order_by(ProgressSnapshot.day)).all()
    days = [row[0] for row in rows]
    for day, employees, linked, members, in_chat, groups, done in rows:
        series["employees"].append((day, progress.pct(int(linked or 0),
                                                      int(employees or 0)) or 0.0))
        series["members"].append((day, progress.pct(int(in_chat or 0),
                                                    int(members or 0)) or 0.0))
        series["groups"].append((day, progress.pct(int(done or 0), int(groups or 0)) or 0.0))
    # Heads per day from their linking times (the snapshots do not hold heads).
    total = 0
    linked_at = []
    for _id, _path, when in session.execute(
            _heads_query(roots).with_only_columns(
                Organisation.id, Organisation.path,
                sa.case((Employee.max_user_id.is_not(None), Employee.linked_at),
                        else_=None))):
        total += 1
        if when is not None:
            linked_at.append(when)
    linked_at.sort()
    for day in days:
        n = bisect_left(linked_at, progress.day_start(day + timedelta(days=1)))
        series["heads"].append((day, progress.pct(n, total) or 0.0))
    if live is not None:
        for m in METRICS:
            series[m].append((today, live.percent(m) or 0.0))
    return series
