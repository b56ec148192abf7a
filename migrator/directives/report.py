"""The report to the ministry: one row per organisation in scope with its register entry,
its figures (the dashboard's) and its status against every directive milestone; produced
as an XLSX file kept under ``instance/`` and signed off with the file's SHA-256 audited."""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlmodel import select

from migrator.audit.service import record
from migrator.db import get_session, utcnow
from migrator.directives import channels, service
from migrator.directives.figures import Facts, subtree_facts
from migrator.directives.models import Directive, ReportRun, TransitionAct
from migrator.directives.register import EXEMPTION_LABELS, files_dir
from migrator.engine.models import Step
from migrator.groups.models import SourceGroup
from migrator.org.models import Organisation
from migrator.progress.service import local_today, tz

log = logging.getLogger("migrator.directives")

REPORT_DIR = "reports"


@dataclass
class ReportRow:
    facts: Facts
    act: TransitionAct | None
    channels_total: int = 0
    channels_with_max: int = 0
    completed_on: date | None = None
    # (directive, milestone status) for each milestone whose directive covers the org.
    statuses: list = field(default_factory=list)

    @property
    def org(self) -> Organisation:
        return self.facts.org

    @property
    def act_text(self) -> str:
        act = self.act
        if act is None:
            return ""
        if act.exemption:
            text = _("Exempt: %(reason)s", reason=str(EXEMPTION_LABELS[act.exemption]))
            return text + (f" ({act.exemption_reason})" if act.exemption_reason else "")
        return _("No. %(number)s of %(date)s", number=act.act_number,
                 date=act.act_date.strftime("%d.%m.%Y"))


def _completion_dates(roots: list[Organisation]) -> dict[int, date]:
    """Per organisation (own groups): the local date of its last cut-over."""
    q = (sa.select(SourceGroup.org_id, sa.func.max(Step.finished_at))
         .join(Step, Step.group_id == SourceGroup.id)
         .join(Organisation, Organisation.id == SourceGroup.org_id)
         .where(Step.kind == "cutover", Step.status == "succeeded",
                sa.or_(*[Organisation.path.startswith(r.path) for r in roots])
                if roots else sa.false())
         .group_by(SourceGroup.org_id))
    zone = tz()
    return {oid: when.astimezone(zone).date() for oid, when in get_session().execute(q)
            if when is not None}


def report_rows(org: Organisation, user, today: date | None = None) -> tuple[list, list]:
    """``(rows, milestones)``: one :class:`ReportRow` per organisation of ``org``'s subtree
    (which the caller checked the user may see) and the ``(directive, milestone)`` columns."""
    today = today or local_today()
    session = get_session()
    facts = subtree_facts([org], user)
    by_id = {f.org.id: f for f in facts}
    acts = {a.org_id: a for a in session.exec(
        select(TransitionAct).where(TransitionAct.org_id.in_(list(by_id)))).all()} \
        if by_id else {}
    rows = {f.org.id: ReportRow(f, acts.get(f.org.id)) for f in facts}
    # Public channels, rolled up like every other figure.
    paths = {f.org.id: f.org.path for f in facts}
    counts = {oid: {"total": n, "with_max": m} for oid, (n, m, _s) in
              channels.own_counts(list(by_id)).items()}
    for oid, c in counts.items():
        path = paths.get(oid)
        for part in (path or "").strip("/").split("/") if path else ():
            target = rows.get(int(part))
            if target is not None:
                target.channels_total += c["total"]
                target.channels_with_max += c["with_max"]
    # Completed: every group of the subtree switched; the date of the last cut-over.
    last = _completion_dates([org])
    for r in rows.values():
        if r.facts.row.groups_total and r.facts.row.groups_done == r.facts.row.groups_total:
            dates = [d for oid, d in last.items()
                     if oid in paths and paths[oid].startswith(r.org.path)]
            r.completed_on = max(dates) if dates else None
    # Milestones of the directives whose scope covers the organisation.
    columns = []
    directives = (service.visible_directives(user) if user is not None
                  else session.exec(select(Directive)).all())
    for directive in directives:
        scope = session.get(Organisation, directive.scope_org_id)
        for m in service.milestones(directive):
            columns.append((directive, m, scope))
    for r in rows.values():
        for directive, m, scope in columns:
            if scope is not None and r.org.path.startswith(scope.path):
                r.statuses.append(service.milestone_status(directive, m, r.facts, today))
            else:
                r.statuses.append(None)
    return [rows[f.org.id] for f in facts], [(d, m) for d, m, _s in columns]


HEADERS = [
    (_l("Organisation code"), 14), (_l("Organisation"), 50), (_l("Transition act"), 30),
    (_l("Employees"), 11), (_l("Employees linked to Max"), 12), (_l("Linked, %"), 10),
    (_l("Heads"), 9), (_l("Heads linked to Max"), 11), (_l("Source groups"), 10),
    (_l("Groups switched"), 11), (_l("Public channels"), 10),
    (_l("Channels with a Max counterpart"), 12), (_l("Date of completion"), 13),
]


def _text(ws, value):
    """A text cell that is never read as a formula, whatever it starts with."""
    cell = WriteOnlyCell(ws, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    return cell


def workbook(org: Organisation, rows: list[ReportRow], columns: list) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("Report")[:31])
    headers = [str(h) for h, _w in HEADERS] + [
        f"{d.title}: {service.METRIC_LABELS[m.metric]} {m.target_percent:g}% "
        f"{_('by')} {m.due:%d.%m.%Y}" for d, m in columns]
    for i, width in enumerate([w for _h, w in HEADERS] + [28] * len(columns), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    title = _text(ws, _("Report on the move to Max: %(name)s", name=org.name))
    title.font = Font(bold=True, size=13)
    ws.append([title])
    ws.append([_text(ws, _("As of %(date)s", date=local_today().strftime("%d.%m.%Y")))])
    ws.append([])
    head = []
    for h in headers:
        c = _text(ws, h)
        c.font = Font(bold=True)
        head.append(c)
    ws.append(head)
    for r in rows:
        f = r.facts.row
        values = [_text(ws, r.org.code), _text(ws, r.org.name), _text(ws, r.act_text),
                  f.employees, f.linked, f.linked_pct, r.facts.heads_total,
                  r.facts.heads_linked, f.groups_total, f.groups_done, r.channels_total,
                  r.channels_with_max]
        done = WriteOnlyCell(ws, value=r.completed_on)
        if r.completed_on is not None:
            done.number_format = "DD.MM.YYYY"
        values.append(done)
        for st in r.statuses:
            if st is None:
                values.append(_text(ws, "—"))
            else:
                fact = "—" if st.fact is None else f"{st.fact:g}%"
                values.append(_text(ws, f"{service.STATUS_LABELS[st.status]} ({fact}; "
                                        + _("days left: %(n)d", n=st.days_left) + ")"))
        ws.append(values)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def produce(org: Organisation, user) -> tuple[ReportRun, bytes]:
    """Build the report of ``org``'s subtree, keep the file under ``instance/reports`` and
    record it (with the file's SHA-256) in the caller's transaction."""
    rows, columns = report_rows(org, user)
    data = workbook(org, rows, columns)
    digest = hashlib.sha256(data).hexdigest()
    now = utcnow()
    rel = f"{REPORT_DIR}/ministry-{org.code}-{now:%Y%m%dT%H%M%S}-{digest[:12]}.xlsx"
    path = files_dir() / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    run = ReportRun(org_id=org.id, sha256=digest, file_path=rel, rows=len(rows),
                    produced_by_id=getattr(user, "id", None), produced_at=now)
    session = get_session()
    session.add(run)
    session.flush()
    record("report.ministry.produced", object_type="report", object_id=run.id, org_id=org.id,
           summary={"org": org.code, "rows": len(rows), "sha256": digest})
    log.info("ministry report of %s produced (%d rows, sha256 %s) by %s", org.code,
             len(rows), digest, getattr(user, "email", "system"))
    return run, data


def run_file(run: ReportRun) -> Path:
    return files_dir() / run.file_path


def sign_off(run: ReportRun, user) -> ReportRun:
    """The coordinator signs the produced file off: who, when, and the SHA-256 of the file
    (recomputed from the stored file) in an audit event. Caller's transaction."""
    if run.signed_at is not None:
        raise service.DirectiveError({"report": _l("this report is already signed off")})
    data = run_file(run).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != run.sha256:
        raise service.DirectiveError({"report": _l("the stored file was changed; produce "
                                                   "the report again")})
    run.signed_at = utcnow()
    run.signed_by_id = getattr(user, "id", None)
    get_session().add(run)
    org = get_session().get(Organisation, run.org_id)
    record("report.ministry.signed", object_type="report", object_id=run.id, org_id=run.org_id,
           summary={"org": org.code if org else None, "sha256": digest, "rows": run.rows,
                    "signed_by": getattr(user, "email", None),
                    "signed_at": run.signed_at.isoformat()})
    return run


def runs(org: Organisation, limit: int = 20) -> list[ReportRun]:
    return list(get_session().exec(
        select(ReportRun).where(ReportRun.org_id == org.id)
        .order_by(ReportRun.produced_at.desc(), ReportRun.id.desc()).limit(limit)).all())
