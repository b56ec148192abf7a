"""The four directive metrics of each organisation's subtree, from the progress figures.

Employees, members and groups come from :mod:`migrator.progress.service` (the dashboard's
figures and its daily snapshots); heads of organisations linked to Max are counted here
from each organisation's ``head_email`` and the employee with that address.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import select

from migrator.db import get_session
from migrator.directives.models import METRICS
from migrator.org.models import Organisation
from migrator.people.models import Employee
from migrator.progress import service as progress
from migrator.progress.models import ProgressSnapshot


@dataclass
class Facts:
    """One organisation's subtree: the dashboard's row plus the heads."""

    org: Organisation
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


def history(org: Organisation, since: date, today: date, live: Facts | None) -> dict:
    """``{metric: [(day, percent), ...]}`` for ``org``'s subtree from the daily snapshots
    since ``since``, ending with today's live figures (``live``)."""
    session = get_session()
    series: dict[str, list] = {m: [] for m in METRICS}
    rows = session.exec(
        select(ProgressSnapshot).where(ProgressSnapshot.org_id == org.id,
                                       ProgressSnapshot.day >= since,
                                       ProgressSnapshot.day < today)
        .order_by(ProgressSnapshot.day)).all()
    days = [s.day for s in rows]
    for s in rows:
        series["employees"].append((s.day, progress.pct(s.linked, s.employees) or 0.0))
        series["members"].append((s.day, progress.pct(s.members_in_chat, s.members_total)
                                  or 0.0))
        series["groups"].append((s.day, progress.pct(s.groups_done, s.groups_total) or 0.0))
    # Heads per day from their linking times (the snapshots do not hold heads).
    linked_at = defaultdict(int)
    total = 0
    for _id, _path, when in session.execute(
            _heads_query([org]).with_only_columns(
                Organisation.id, Organisation.path,
                sa.case((Employee.max_user_id.is_not(None), Employee.linked_at),
                        else_=None))):
        total += 1
        if when is not None:
            linked_at[when] += 1
    for day in days:
        cutoff = progress.day_start(day + timedelta(days=1))
        n = sum(v for k, v in linked_at.items() if k < cutoff)
        series["heads"].append((day, progress.pct(n, total) or 0.0))
    if live is not None:
        for m in METRICS:
            series[m].append((today, live.percent(m) or 0.0))
    return series
