"""Wave pages: list, plan (with bulk selection and preview), detail, pause/resume/reschedule,
and the region-wide defaults (admins)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from sqlmodel import select
from wtforms.fields.choices import SelectChoice

from migrator.auth.service import (
    can_see_org_id,
    roles_required,
    scope_org_ids_subquery,
    scoped,
)
from migrator.core.i18n import fmt_dt
from migrator.core.pagination import paginate
from migrator.db import get_session, utcnow
from migrator.engine.models import STEP_KINDS, Step
from migrator.groups.models import SourceGroup
from migrator.groups.service import MEMBER_STATES
from migrator.org.models import Organisation
from migrator.progress.service import wave_rows
from migrator.waves import service
from migrator.waves.forms import (
    MEMBER_FILTER_LABELS,
    PLATFORM_LABELS,
    RescheduleForm,
    SettingsForm,
    WaveForm,
)
from migrator.waves.models import Wave
from migrator.waves.settings import DEFAULTS, all_settings, save_settings

bp = Blueprint("waves", __name__, url_prefix="/waves")


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["MIGRATOR_TZ"])


def _aware(value: datetime | None) -> datetime | None:
    """A form's local (naive) time → aware, in the configured zone."""
    return value.replace(tzinfo=_tz()) if value is not None and value.tzinfo is None else value


def _local(value: datetime) -> datetime:
    return value.astimezone(_tz()).replace(tzinfo=None)


def _dates(form) -> dict:
    return {k: _aware(getattr(form, k).data) for k in service.DATE_FIELDS}


def get_wave(wave_id: int) -> Wave:
    """The wave, if it holds one of the user's groups (else 404, whatever its ``org_id``)."""
    wave = get_session().get(Wave, wave_id)
    if wave is None or not service.can_see_wave(wave, current_user):
        abort(404)
    return wave


@bp.route("/")
@login_required
def waves():
    q = select(Wave)
    visible = service.visible_waves_clause(current_user)
    if visible is not None:  # the waves that hold one of the user's groups
        q = q.where(visible)
    status = request.args.get("status")
    if status:
        q = q.where(Wave.status == status)
    page = paginate(q, sorts={"name": Wave.name, "invite_at": Wave.invite_at,
                              "cutover_at": Wave.cutover_at, "deadline": Wave.deadline,
                              "status": Wave.status}, default_sort="invite_at")
    now = utcnow()
    figures = wave_rows([w.id for w in page.items], current_user, now)
    return render_template("waves/waves.html", page=page, status=status, now=now,
                           figures=figures)


def _org_choices() -> list:
    # Plain columns, not ORM objects: up to a thousand options on every planner page.
    q = scoped(sa.select(Organisation.id, Organisation.name, Organisation.depth)
               .order_by(Organisation.path).limit(1000), Organisation.id)
    orgs = get_session().execute(q).all()
    return [SelectChoice("", _("— all visible —"))] + [
        SelectChoice(str(org_id), "· " * depth + name) for org_id, name, depth in orgs]


PLANNER_PER_PAGE = 25
PICK_ALL_LIMIT = 5000  # "pick every group found" takes at most this many
PREVIEW_ROWS = 200  # the preview lists this many picked groups, then counts the rest


def _member_state_choices() -> list:
    return [SelectChoice("", _("any")),
            *(SelectChoice(s, MEMBER_FILTER_LABELS[s]) for s in MEMBER_STATES)]


def _picked(form_data) -> list[str]:
    """The picked keys: those carried from earlier pages, less the boxes of the page shown
    that were unticked, plus the ticked ones (order kept, duplicates dropped)."""
    shown = set(form_data.getlist("shown"))
    carried = [k for k in form_data.getlist("picked") if k not in shown]
    return list(dict.fromkeys([*carried, *form_data.getlist("check")]))


@bp.route("/new", methods=["GET", "POST"])
@login_required
@roles_required("admin", "coordinator")
def new():
    """The wave planner: filter the free groups in scope (organisation subtree, platform, the
    state of the chat and of the members, text), tick them page by page or take every group
    found, check the picked groups by name, then create the wave. No JavaScript needed."""
    form = WaveForm()
    form.org.choices = _org_choices()
    form.member_state.choices = _member_state_choices()
    number, picked, group_errors = 1, [], []
    if request.method == "GET":
        start = datetime.combine(datetime.now(_tz()).date() + timedelta(days=1), time(9, 0),
                                 tzinfo=_tz())
        for k, v in service.default_dates(start).items():
            getattr(form, k).data = _local(v)
    else:
        picked = _picked(request.form)
        goto = request.form.get("goto", "")
        number = int(goto) if goto.isdigit() and 0 < int(goto) < 100_000 else 1
    org = None
    if form.org.data:
        org = get_session().get(Organisation, int(form.org.data)) if form.org.data.isdigit() \
            else None
        if org is None or not can_see_org_id(org.id):
            abort(404)
    query = service.planner_query(current_user, org, form.platforms.data or (),
                                  form.chat_state.data or "", form.member_state.data or "",
                                  form.q.data or "")
    if request.method == "POST":
        if form.clear.data:
            picked = []
        elif form.pick_all.data:
            found = get_session().scalars(
                query.with_only_columns(SourceGroup.key).order_by(SourceGroup.key)
                .limit(PICK_ALL_LIMIT)).all()
            picked = list(dict.fromkeys([*picked, *found]))
        try:  # every key must be a group the user may see: a forged one changes nothing
            service.groups_by_keys(picked, current_user)
        except service.GroupsNotFound as exc:
            group_errors.append(_("Groups not found or not in your scope: %(keys)s",
                                  keys=", ".join(exc.keys[:20])))
            picked = [k for k in picked if k not in set(exc.keys)]
        if form.submit.data and form.validate() and not group_errors:
            try:
                wave = service.create_wave(form.name.data, picked, **_dates(form),
                                           user=current_user)
                get_session().commit()
                flash(ngettext("Wave «%(name)s» is planned: %(num)d group.",
                               "Wave «%(name)s» is planned: %(num)d groups.", len(picked),
                               name=wave.name), "success")
                return redirect(url_for("waves.detail", wave_id=wave.id))
            except service.WaveError as exc:
                get_session().rollback()
                if "group_keys" in exc.details:
                    group_errors.append(exc.details.pop("group_keys"))
                _field_errors(form, exc.details)
        elif form.submit.data and not form.errors.get("csrf_token"):
            dates = _dates(form)  # the order of the dates, with the other errors
            if all(dates.values()):
                _field_errors(form, service.validate_dates(dates))
            if not picked and not group_errors:
                group_errors.append(_("Choose at least one group."))
    total = get_session().scalar(sa.select(sa.func.count()).select_from(
        query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // PLANNER_PER_PAGE))
    number = min(number, pages)
    rows = get_session().execute(query.order_by(Organisation.path, SourceGroup.name,
                                                SourceGroup.key)
                                 .limit(PLANNER_PER_PAGE)
                                 .offset((number - 1) * PLANNER_PER_PAGE)).all()
    previews = service.preview_groups(service.picked_rows(picked, current_user, PREVIEW_ROWS))
    return render_template("waves/new.html", form=form, rows=rows, total=total, number=number,
                           pages=pages, picked=picked, picked_set=set(picked),
                           shown_keys={g.key for g, _o, _c in rows},
                           previews=previews, group_errors=group_errors,
                           platforms=PLATFORM_LABELS, pick_all_limit=PICK_ALL_LIMIT)


def _field_errors(form, details: dict) -> None:
    for name, message in details.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, message]


@bp.route("/<int:wave_id>")
@login_required
def detail(wave_id: int):
    """The wave's figures (groups per state), then its groups a page at a time, filtered by
    state on the server; steps are read only for the groups on the page."""
    wave = get_wave(wave_id)
    sub = scope_org_ids_subquery(current_user)
    visible = None if sub is None else sa.select(SourceGroup.id).where(
        SourceGroup.wave_id == wave.id, SourceGroup.org_id.in_(sub))
    figures = service.wave_figures(wave, visible)
    state = request.args.get("state", "")
    q = select(SourceGroup).where(SourceGroup.wave_id == wave.id)
    if sub is not None:
        q = q.where(SourceGroup.org_id.in_(sub))
    if state in service.GROUP_STATES:
        states = service.group_state_query(wave).subquery()
        q = q.join(states, states.c.group_id == SourceGroup.id).where(states.c.state == state)
    else:
        state = ""
    page = paginate(q, sorts={"key": SourceGroup.key, "name": SourceGroup.name},
                    default_sort="key", per_page=current_app.config["PER_PAGE"])
    steps: dict[int, dict[str, Step]] = {}
    due_text: dict = {}  # the steps of a wave share a few due times: each formatted once
    if page.items:
        for step in service.wave_step_badges(wave, [g.id for g in page.items]):
            steps.setdefault(step.group_id, {})[step.kind] = step
            if step.due_at not in due_text:
                due_text[step.due_at] = fmt_dt(step.due_at)
    form = RescheduleForm()
    for k in service.DATE_FIELDS:
        getattr(form, k).data = _local(getattr(wave, k))
    now = utcnow()
    return render_template("waves/detail.html", wave=wave, groups=page.items, page=page,
                           steps=steps, due_text=due_text, figures=figures, state=state,
                           states=service.GROUP_STATES, kinds=STEP_KINDS, form=form,
                           can_write=service.can_change_wave(wave, current_user), now=now,
                           group_link=group_link,
                           fig=wave_rows([wave.id], current_user, now)[wave.id])


def group_link(key: str) -> str | None:
    """The group page's URL, when the groups feature serves one."""
    for endpoint in ("groups.detail", "groups.group"):
        if endpoint in current_app.view_functions:
            return url_for(endpoint, key=key)
    return None


@bp.post("/<int:wave_id>/<action>")
@login_required
@roles_required("admin", "coordinator")
def change(wave_id: int, action: str):
    wave = get_wave(wave_id)
    if not service.can_change_wave(wave, current_user):
        abort(403)  # a shared wave with groups outside the user's scope
    try:
        if action == "pause":
            service.pause_wave(wave, current_user.email)
            flash(_("Wave «%(name)s» is paused.", name=wave.name), "success")
        elif action == "resume":
            service.resume_wave(wave, current_user.email)
            flash(_("Wave «%(name)s» is resumed.", name=wave.name), "success")
        elif action == "reschedule":
            form = RescheduleForm()
            if not form.validate():
                flash(_("Please give every date."), "error")
                return redirect(url_for("waves.detail", wave_id=wave.id))
            n = service.reschedule_wave(wave, _dates(form), current_user.email)
            flash(ngettext("Wave «%(name)s» is rescheduled: %(num)d step moved.",
                           "Wave «%(name)s» is rescheduled: %(num)d steps moved.", n,
                           name=wave.name), "success")
        else:
            abort(404)
        get_session().commit()
    except service.WaveError as exc:
        get_session().rollback()
        flash("; ".join(exc.details.values()), "error")
    return redirect(url_for("waves.detail", wave_id=wave.id))


@bp.route("/settings", methods=["GET", "POST"])
@login_required
@roles_required("admin")
def settings():
    form = SettingsForm(data=all_settings()) if request.method == "GET" else SettingsForm()
    if form.validate_on_submit():
        save_settings({k: getattr(form, k).data for k in DEFAULTS})
        get_session().commit()
        flash(_("Settings saved."), "success")
        return redirect(url_for("waves.settings"))
    return render_template("waves/settings.html", form=form)
