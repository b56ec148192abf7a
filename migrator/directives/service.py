"""Directives: recording them, plan against fact per organisation, escalating the lag.

Each milestone's trajectory is a straight line from the directive's date (0 %) to its
target on its due date. An organisation is «выполнено» on a milestone once its fact reaches
the target, «отстаёт» while its fact is below the trajectory, else «в графике».
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import abort, current_app
from flask_babel import force_locale, lazy_pgettext
from flask_babel import lazy_gettext as _l
from sqlmodel import select

from migrator.audit.service import Actor, acting_as, record
from migrator.auth.service import can_see_org, scope_paths, scoped
from migrator.db import get_session, utcnow
from migrator.directives.figures import Facts, history, scope_facts, subtree_facts
from migrator.directives.models import METRICS, Directive, Escalation, Milestone
from migrator.mail.models import OutboxMessage
from migrator.mail.service import queue_email, valid_address
from migrator.mail.templates import render_email
from migrator.org.models import Organisation
from migrator.org.service import get_by_code
from migrator.people.models import Employee
from migrator.progress.service import local_today, visible_roots

log = logging.getLogger("migrator.directives")

METRIC_LABELS = {
    "heads": _l("Heads of organisations linked to Max"),
    "employees": _l("Employees linked to Max"),
    "members": _l("Members in their Max chats"),
    "groups": _l("Source groups switched"),
}
ON_TRACK, BEHIND, DONE, NO_DATA = "on_track", "behind", "done", "no_data"
STATUS_LABELS = {
    ON_TRACK: _l("on schedule"),
    BEHIND: _l("behind"),
    DONE: lazy_pgettext("directive", "completed"),  # a wave's "completed" is another word
    NO_DATA: _l("no data"),
}
ESCALATION_EVERY = timedelta(days=7)  # at most one e-mail a week to an organisation's head
MAX_MILESTONES = 20


class DirectiveError(ValueError):
    """Bad input: ``errors`` maps a field to its (translatable) reason."""

    def __init__(self, errors: dict):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# --- recording -------------------------------------------------------------------------


def _parse_date(value) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def create_directive(data: dict, user) -> Directive:
    """Validate ``data`` (the API's shape) and add a directive with its milestones to the
    session, with an audit event. Raises :class:`DirectiveError`; writes nothing then."""
    errors: dict = {}
    title = (data.get("title") or "").strip() if isinstance(data.get("title"), str) else ""
    issued_by = (data.get("issued_by") or "").strip() if isinstance(
        data.get("issued_by"), str) else ""
    if not title:
        errors["title"] = _l("a value is required")
    elif len(title) > 500:
        errors["title"] = _l("the value is longer than %(max)d characters", max=500)
    if not issued_by:
        errors["issued_by"] = _l("a value is required")
    elif len(issued_by) > 300:
        errors["issued_by"] = _l("the value is longer than %(max)d characters", max=300)
    issued_at = _parse_date(data.get("issued_at"))
    if issued_at is None:
        errors["issued_at"] = _l("a date as YYYY-MM-DD is required")
    code = data.get("scope_org")
    org = get_by_code(code.strip()) if isinstance(code, str) and code.strip() else None
    if org is None or not can_see_org(org, user):
        errors["scope_org"] = _l("unknown organisation code or outside your scope")
    milestones = data.get("milestones")
    parsed: list[tuple[str, float, date]] = []
    if not isinstance(milestones, list) or not milestones:
        errors["milestones"] = _l("at least one milestone is required")
    elif len(milestones) > MAX_MILESTONES:
        errors["milestones"] = _l("at most %(max)d milestones", max=MAX_MILESTONES)
    else:
        for i, m in enumerate(milestones):
            key = f"milestones[{i}]"
            if not isinstance(m, dict):
                errors[key] = _l("a milestone is an object with metric, target_percent, due")
                continue
            metric = m.get("metric")
            target = m.get("target_percent")
            due = _parse_date(m.get("due"))
            if metric not in METRICS:
                errors[key + ".metric"] = _l("unknown metric; allowed: %(metrics)s",
                                             metrics=", ".join(METRICS))
            if isinstance(target, bool) or not isinstance(target, int | float) \
                    or not 0 < target <= 100:
                errors[key + ".target_percent"] = _l("a number above 0 and at most 100")
            if due is None:
                errors[key + ".due"] = _l("a date as YYYY-MM-DD is required")
            elif issued_at is not None and due <= issued_at:
                errors[key + ".due"] = _l("the due date must be after the directive's date")
            if key + ".metric" not in errors and key + ".target_percent" not in errors \
                    and due is not None and key + ".due" not in errors:
                parsed.append((metric, float(target), due))
    if errors:
        raise DirectiveError(errors)
    session = get_session()
    directive = Directive(title=title, issued_by=issued_by, issued_at=issued_at,
                          scope_org_id=org.id, created_by_id=getattr(user, "id", None))
    session.add(directive)
    session.flush()
    for metric, target, due in sorted(parsed, key=lambda p: (p[2], p[0])):
        session.add(Milestone(directive_id=directive.id, metric=metric, target_percent=target,
                              due=due))
    session.flush()
    record("directive.created", object_type="directive", object_id=directive.id,
           org_id=org.id, summary={"title": title, "issued_by": issued_by,
                                   "issued_at": issued_at.isoformat(), "scope_org": org.code,
                                   "milestones": [{"metric": m, "target_percent": t,
                                                   "due": d.isoformat()}
                                                  for m, t, d in parsed]})
    log.info("directive %r recorded for %s by %s", title, org.code,
             getattr(user, "email", "system"))
    return directive


# --- reading, within the user's scope ---------------------------------------------------


def focus_roots(scope: Organisation, user_roots: list[Organisation] | None,
                org: Organisation | None = None) -> list[Organisation]:
    """The part of a directive's ``scope`` a user sees: the scope itself when the user sees
    it whole, else the user's scope roots inside it (``user_roots``: from
    :func:`visible_roots`, None for everything). With ``org`` (a page's organisation, which
    the caller checked) only what lies under ``org``: ``org`` itself when it is inside."""
    if user_roots is None or any(scope.path.startswith(r.path) for r in user_roots):
        roots = [scope]
    else:
        roots = [r for r in user_roots if r.path.startswith(scope.path)]
    if org is None:
        return roots
    if any(org.path.startswith(r.path) for r in roots):
        return [org]
    return [r for r in roots if r.path.startswith(org.path)]


def scope_roots(directive: Directive, user) -> list[Organisation]:
    """The organisations of the directive's scope the user sees: the scope itself, or the
    user's scope roots inside it."""
    scope = get_session().get(Organisation, directive.scope_org_id)
    if scope is None:
        return []
    return focus_roots(scope, visible_roots(user))


def visible(directive: Directive | None, user) -> bool:
    return directive is not None and bool(scope_roots(directive, user))


def _visible_query(user):
    """(directive, its scope organisation) for the directives whose scope overlaps the
    user's scope, newest first."""
    q = (select(Directive, Organisation)
         .join(Organisation, Organisation.id == Directive.scope_org_id)
         .order_by(Directive.issued_at.desc(), Directive.id.desc()))
    paths = scope_paths(user)
    if paths is not None:
        if not paths:
            return q.where(sa.false())
        path = Organisation.path
        q = q.where(sa.or_(*[sa.or_(path.startswith(p), sa.literal(p).like(path + "%"))
                             for p in paths]))
    return q


def visible_directives(user) -> list[Directive]:
    """Directives whose scope overlaps the user's scope, newest first."""
    return [d for d, _scope in get_session().exec(_visible_query(user)).all()]


def get_visible(directive_id: int, user) -> Directive:
    directive = get_session().get(Directive, directive_id)
    if not visible(directive, user):
        abort(404)
    return directive


def milestones(directive: Directive) -> list[Milestone]:
    return list(get_session().exec(
        select(Milestone).where(Milestone.directive_id == directive.id)
        .order_by(Milestone.due, Milestone.id)).all())


# --- plan against fact ------------------------------------------------------------------


def plan_percent(directive: Directive, milestone: Milestone, day: date) -> float:
    """The trajectory on ``day``: 0 at the directive's date, the target on the due date."""
    span = (milestone.due - directive.issued_at).days
    if span <= 0 or day >= milestone.due:
        return milestone.target_percent if day >= milestone.due else 0.0
    done = max(0, (day - directive.issued_at).days)
    return round(milestone.target_percent * done / span, 1)


@dataclass
class MilestoneStatus:
    milestone: Milestone
    plan: float
    fact: float | None
    done: int
    total: int
    status: str
    days_left: int

    @property
    def lag(self) -> float:
        return round(self.plan - (self.fact or 0.0), 1)

    def as_dict(self) -> dict:
        m = self.milestone
        return {"milestone_id": m.id, "metric": m.metric, "target_percent": m.target_percent,
                "due": m.due.isoformat(), "plan_percent": self.plan,
                "fact_percent": self.fact, "done": self.done, "total": self.total,
                "status": self.status, "days_left": self.days_left}


@dataclass
class OrgProgress:
    facts: Facts
    milestones: list[MilestoneStatus] = field(default_factory=list)

    @property
    def org(self) -> Organisation:
        return self.facts.org

    @property
    def status(self) -> str:
        statuses = [m.status for m in self.milestones if m.status != NO_DATA]
        if not statuses:
            return NO_DATA
        if BEHIND in statuses:
            return BEHIND
        if all(s == DONE for s in statuses):
            return DONE
        return ON_TRACK


def milestone_status(directive: Directive, milestone: Milestone, facts: Facts,
                     today: date) -> MilestoneStatus:
    done, total = facts.parts(milestone.metric)
    fact = facts.percent(milestone.metric)
    plan = plan_percent(directive, milestone, today)
    if fact is None:
        status = NO_DATA
    elif fact >= milestone.target_percent:
        status = DONE
    elif fact < plan:
        status = BEHIND
    else:
        status = ON_TRACK
    return MilestoneStatus(milestone, plan, fact, done, total, status,
                           (milestone.due - today).days)


def progress(directive: Directive, user, org: Organisation | None = None,
             today: date | None = None) -> list[OrgProgress]:
    """Plan and fact of every organisation of the directive's scope the user sees (or of
    ``org``'s subtree, which the caller checked), tree order."""
    today = today or local_today()
    roots = [org] if org is not None else scope_roots(directive, user)
    ms = milestones(directive)
    out = []
    for facts in subtree_facts(roots, user):
        out.append(OrgProgress(facts, [milestone_status(directive, m, facts, today)
                                       for m in ms]))
    return out


def in_scope(directive: Directive, org: Organisation, user) -> bool:
    """``org`` is inside the directive's scope and visible to the user."""
    scope = get_session().get(Organisation, directive.scope_org_id)
    return scope is not None and org.path.startswith(scope.path) and can_see_org(org, user)


# --- the dashboard ------------------------------------------------------------------------

DASHBOARD_DIRECTIVES = 3  # directives on the dashboard: those with a milestone nearest today
DASHBOARD_CHARTS = 4  # milestone charts per directive there; its page shows them all


@dataclass
class DashboardItem:
    """A directive as the dashboard shows it: plan against fact of the part of its scope
    the user sees (``roots``, summed), each milestone's actual curve in ``series``."""

    directive: Directive
    roots: list[Organisation]
    progress: OrgProgress  # every milestone's status
    charted: list[MilestoneStatus]  # the milestones drawn (the nearest to today)
    series: dict[str, list]  # metric -> [(day, percent)], from the directive's date

    @property
    def name(self) -> str:
        return ", ".join(r.name for r in self.roots)


def dashboard(user, org: Organisation | None = None, today: date | None = None,
              limit: int = DASHBOARD_DIRECTIVES) -> tuple[list[DashboardItem], int]:
    """The directives whose scope reaches the user's scope (under ``org``, the dashboard's
    organisation, when given): the ``limit`` with a milestone nearest to today, and how many
    there are in all. The figures of each directive's part of the scope are read once per
    distinct part (most directives share one), whatever the number of organisations."""
    today = today or local_today()
    session = get_session()
    user_roots = visible_roots(user)
    candidates = []
    for directive, scope in session.exec(_visible_query(user)).all():
        roots = focus_roots(scope, user_roots, org)
        if roots:
            candidates.append((directive, roots))
    if not candidates:
        return [], 0
    by_directive: dict[int, list[Milestone]] = {}
    for m in session.exec(
            select(Milestone).where(Milestone.directive_id.in_([d.id for d, _r in candidates]))
            .order_by(Milestone.due, Milestone.id)).all():
        by_directive.setdefault(m.directive_id, []).append(m)

    def distance(m: Milestone) -> int:
        return abs((m.due - today).days)

    candidates = [c for c in candidates if by_directive.get(c[0].id)]
    chosen = sorted(candidates, key=lambda c: (min(map(distance, by_directive[c[0].id])),
                                               -c[0].id))[:limit]
    facts: dict[tuple, Facts] = {}
    series: dict[tuple, dict] = {}
    since: dict[tuple, date] = {}
    for directive, roots in chosen:
        key = tuple(r.id for r in roots)
        since[key] = min(since.get(key, directive.issued_at), directive.issued_at)
    items = []
    for directive, roots in chosen:
        key = tuple(r.id for r in roots)
        if key not in facts:
            facts[key] = scope_facts(roots)
            series[key] = history(roots, since[key], today, facts[key])
        ms = by_directive[directive.id]
        statuses = [milestone_status(directive, m, facts[key], today) for m in ms]
        nearest = {st.milestone.id for st in
                   sorted(statuses, key=lambda st: distance(st.milestone))[:DASHBOARD_CHARTS]}
        items.append(DashboardItem(
            directive=directive, roots=roots, progress=OrgProgress(facts[key], statuses),
            charted=[st for st in statuses if st.milestone.id in nearest],
            series={metric: [(day, v) for day, v in points if day >= directive.issued_at]
                    for metric, points in series[key].items()}))
    return items, len(candidates)


# --- escalation -------------------------------------------------------------------------


def lag_threshold() -> float:
    return float(current_app.config["DIRECTIVE_LAG_POINTS"])


def check_escalations(now: datetime | None = None) -> dict:
    """Raise an escalation for each organisation behind a milestone's trajectory by more
    than ``DIRECTIVE_LAG_POINTS``, resolve those no longer behind, and queue one e-mail to
    the head of each lagging organisation at most once a week. Commits. The e-mails are in
    the default locale (this runs in the scheduler, not in a request)."""
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        return _check_escalations(now)


def _check_escalations(now: datetime | None) -> dict:
    now = now or utcnow()
    today = local_today(now)
    session = get_session()
    threshold = lag_threshold()
    stats = {"raised": 0, "resolved": 0, "emailed": 0}
    with acting_as(Actor("job", "directives", "directives")):
        open_rows = {(e.milestone_id, e.org_id): e for e in session.exec(
            select(Escalation).where(Escalation.resolved_at.is_(None))).all()}
        lagging: dict[int, list[tuple[Directive, MilestoneStatus]]] = {}
        orgs: dict[int, Organisation] = {}
        for directive in session.exec(select(Directive)).all():
            scope = session.get(Organisation, directive.scope_org_id)
            if scope is None:
                continue
            for op in progress(directive, None, org=scope, today=today):
                for ms in op.milestones:
                    key = (ms.milestone.id, op.org.id)
                    if ms.status != BEHIND or ms.lag <= threshold:
                        continue  # an open row left in open_rows is resolved below
                    row = open_rows.pop(key, None)
                    if row is None:
                        row = Escalation(milestone_id=ms.milestone.id, org_id=op.org.id,
                                         plan_percent=ms.plan, fact_percent=ms.fact or 0.0,
                                         raised_at=now)
                        stats["raised"] += 1
                        session.add(row)
                        session.flush()
                        record("directive.lagging", object_type="organisation",
                               object_id=op.org.code, org_id=op.org.id,
                               summary={"directive_id": directive.id,
                                        "metric": ms.milestone.metric,
                                        "plan_percent": ms.plan,
                                        "fact_percent": ms.fact or 0.0})
                    else:
                        row.plan_percent, row.fact_percent = ms.plan, ms.fact or 0.0
                        session.add(row)
                    lagging.setdefault(op.org.id, []).append((directive, ms))
                    orgs[op.org.id] = op.org
        for row in open_rows.values():  # no longer behind (or the milestone is gone)
            row.resolved_at = now
            session.add(row)
            stats["resolved"] += 1
        for org_id, items in lagging.items():
            if _email_head(orgs[org_id], items, now):
                stats["emailed"] += 1
        session.commit()
    log.info("directive escalations: %(raised)d raised, %(resolved)d resolved, "
             "%(emailed)d e-mailed", stats)
    return stats


def _email_head(org: Organisation, items: list, now: datetime) -> bool:
    """Queue the weekly e-mail to ``org``'s head about its lag; ``False`` when one went in
    the last seven days or the head has no usable address."""
    if not valid_address(org.head_email):
        return False
    session = get_session()
    recent = session.scalar(
        sa.select(sa.func.count()).select_from(OutboxMessage)
        .where(OutboxMessage.kind == "directive_lag", OutboxMessage.org_id == org.id,
               OutboxMessage.created_at > now - ESCALATION_EVERY))
    if recent:
        return False
    rows = [{"directive": d.title, "metric": str(METRIC_LABELS[ms.milestone.metric]),
             "plan": ms.plan, "fact": ms.fact or 0.0, "target": ms.milestone.target_percent,
             "due": ms.milestone.due} for d, ms in items]
    head_name = session.scalar(sa.select(Employee.full_name).where(
        Employee.email == org.head_email.lower()))
    subject, text, html = render_email(
        "directive_lag", full_name=head_name or "", org_name=org.name, rows=rows,
        url=current_app.config["MIGRATOR_BASE_URL"] + "/directives/")
    queue_email(f"directive-lag:{org.id}:{local_today(now).isoformat()}", org.head_email,
                subject, text, html, kind="directive_lag", org_id=org.id, now=now)
    for _directive, ms in items:
        row = session.exec(select(Escalation).where(
            Escalation.milestone_id == ms.milestone.id, Escalation.org_id == org.id,
            Escalation.resolved_at.is_(None))).first()
        if row is not None:
            row.emailed_at = now
            session.add(row)
    record("directive.head_emailed", object_type="organisation", object_id=org.code,
           org_id=org.id, summary={"to": org.head_email, "milestones": len(items)})
    return True


def escalation_open():
    """SQL: the escalation is open (not resolved yet)."""
    return Escalation.resolved_at.is_(None)


def escalations_shown():
    """Escalations with what a row of them shows: organisation, milestone, directive."""
    return (select(Escalation, Organisation, Milestone, Directive)
            .join(Organisation, Organisation.id == Escalation.org_id)
            .join(Milestone, Milestone.id == Escalation.milestone_id)
            .join(Directive, Directive.id == Milestone.directive_id))


def open_escalations(user):
    """Open escalations in the user's scope, with their organisation, milestone, directive
    (the attention list's section)."""
    return scoped(escalations_shown().where(escalation_open()), Escalation.org_id, user)
