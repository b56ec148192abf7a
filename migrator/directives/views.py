"""Pages: directives (plan against fact), the register entry form, public channels, the
ministry report with its sign-off."""

from __future__ import annotations

import io

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlmodel import select
from wtforms.fields.choices import SelectChoice

from migrator.auth.models import User
from migrator.auth.service import can_see_org, can_write, require_org, roles_required
from migrator.db import get_session
from migrator.directives import channels, figures, register, report, service
from migrator.directives.charts import milestone_chart
from migrator.directives.forms import DirectiveForm
from migrator.directives.models import EXEMPTIONS, METRICS, ReportRun
from migrator.org.models import Organisation
from migrator.org.service import get_by_code
from migrator.progress.service import local_today, top_orgs, tz, visible_roots

bp = Blueprint("directives", __name__)

STATUS_FILTERS = (service.BEHIND, service.ON_TRACK, service.DONE, service.NO_DATA)


def _labels() -> dict:
    return {"metric_labels": service.METRIC_LABELS, "status_labels": service.STATUS_LABELS,
            "exemption_labels": register.EXEMPTION_LABELS,
            "channel_labels": channels.STATUS_LABELS}


def _org_choices() -> list[tuple[str, str]]:
    """Organisations the user may choose as a scope: their roots and two levels below."""
    roots = visible_roots(current_user)
    q = select(Organisation).order_by(Organisation.path)
    if roots is not None:
        q = q.where(sa.or_(*[Organisation.path.startswith(r.path) for r in roots])
                    if roots else sa.false())
    top = min((r.depth for r in roots), default=0) if roots else 0
    q = q.where(Organisation.depth <= top + 2).limit(2000)
    return [SelectChoice(o.code, "\u00a0\u00a0" * (o.depth - top) + o.name)
            for o in get_session().exec(q).all()]


# --- directives -------------------------------------------------------------------------


@bp.route("/directives/")
@login_required
def index():
    items = []
    today = local_today()
    for d in service.visible_directives(current_user):
        roots = service.scope_roots(d, current_user)
        items.append((d, service.milestones(d), roots))
    return render_template("directives/index.html", items=items, today=today,
                           can_write=can_write(), **_labels())


@bp.route("/directives/new", methods=["GET", "POST"])
@roles_required("admin", "coordinator")
def new():
    form = DirectiveForm()
    form.scope_org.choices = _org_choices()
    for sub in form.milestones:
        sub.metric.choices = [SelectChoice("", "—")] + [
            SelectChoice(m, str(service.METRIC_LABELS[m])) for m in METRICS]
    if request.method == "POST":
        form.validate()  # type errors (a bad date or number) show inline
        rows = [(i, sub) for i, sub in enumerate(form.milestones)
                if sub.metric.data or sub.target_percent.data is not None or sub.due.data]
        data = {"title": form.title.data or "", "issued_by": form.issued_by.data or "",
                "issued_at": form.issued_at.data, "scope_org": form.scope_org.data or "",
                "milestones": [{"metric": sub.metric.data or None,
                                "target_percent": float(sub.target_percent.data)
                                if sub.target_percent.data is not None else None,
                                "due": sub.due.data} for _i, sub in rows]}
        type_errors = any(f.errors for f in form if f.name != "csrf_token") or \
            any(f.errors for _i, sub in rows for f in sub.form)
        if not getattr(form, "csrf_token", None) or not form.csrf_token.errors:
            try:
                if type_errors:
                    raise service.DirectiveError({})
                directive = service.create_directive(data, current_user)
            except service.DirectiveError as exc:
                get_session().rollback()
                _attach(form, rows, exc.errors)
            else:
                get_session().commit()
                flash(_("Directive «%(title)s» recorded.", title=directive.title), "success")
                return redirect(url_for("directives.detail", directive_id=directive.id))
    elif not form.issued_at.data:
        form.issued_at.data = local_today()
    return render_template("directives/new.html", form=form)


def _attach(form, rows, errors: dict) -> None:
    """Show the service's errors next to their fields."""
    for key, reason in errors.items():
        if key.startswith("milestones["):
            index, _sep, name = key[len("milestones["):].partition("].")
            sub = rows[int(index)][1] if index.isdigit() and int(index) < len(rows) else None
            if sub is not None and name in ("metric", "target_percent", "due"):
                sub[name].errors = [*sub[name].errors, str(reason)]
        elif key == "milestones":
            form.milestones.errors = [str(reason)]
        elif key in form:
            form[key].errors = [*form[key].errors, str(reason)]


@bp.route("/directives/<int:directive_id>")
@login_required
def detail(directive_id: int):
    directive = service.get_visible(directive_id, current_user)
    code = (request.args.get("org") or "").strip()
    focus = None
    if code:
        focus = get_by_code(code)
        if focus is None or not service.in_scope(directive, focus, current_user):
            abort(404)
    today = local_today()
    rows = service.progress(directive, current_user, today=today)
    ms = service.milestones(directive)
    top = focus or (rows[0].org if rows else None)
    top_row = next((r for r in rows if top is not None and r.org.id == top.id), None)
    charts = []
    if top_row is not None:
        history = figures.history([top_row.org], directive.issued_at, today, top_row.facts)
        for m in ms:
            charts.append(milestone_chart(directive, m, history[m.metric], top_row.org.name,
                                          chart_id=f"milestone-{m.id}"))
    status = request.args.get("status") or ""
    shown = [r for r in rows if (not status or r.status == status)
             and (focus is None or r.org.path.startswith(focus.path))]
    counts = {s: sum(1 for r in rows if r.status == s) for s in STATUS_FILTERS}
    number = max(1, request.args.get("page", 1, type=int))
    per = current_app.config["PER_PAGE"]
    pages = max(1, -(-len(shown) // per))
    number = min(number, pages)
    escalations = get_session().exec(
        service.open_escalations(current_user)
        .where(service.Milestone.directive_id == directive.id)).all()
    return render_template(
        "directives/detail.html", directive=directive, milestones=ms, focus=focus,
        top_row=top_row, charts=charts, rows=shown[(number - 1) * per:number * per],
        total=len(shown), number=number, pages=pages, status=status, counts=counts,
        statuses=STATUS_FILTERS, today=today, escalations=escalations,
        scope=get_session().get(Organisation, directive.scope_org_id), **_labels())


# --- the register of transition orders ------------------------------------------------


@bp.route("/orgs/<code>/transition-act", methods=["POST"])
@roles_required("admin", "coordinator")
def save_act(code: str):
    org = require_org(get_by_code(code))
    f = request.form
    values, errors = register.check_act(f.get("act_number"), f.get("act_date"),
                                        f.get("exemption"), f.get("exemption_reason"))
    upload = request.files.get("scan")
    scan = upload.read() if upload and upload.filename else None
    if not errors:
        try:
            register.save_act(org, values, current_user, scan=scan)
        except service.DirectiveError as exc:
            get_session().rollback()
            errors = exc.errors
        else:
            get_session().commit()
            flash(_("The register entry of «%(name)s» is saved.", name=org.name), "success")
            return redirect(url_for("org.detail", code=org.code) + "#transition-act")
    context = {"org": org, "act": register.get_act(org), "exemptions": EXEMPTIONS,
               "exemption_labels": register.EXEMPTION_LABELS, "can_write": True,
               "errors": {k: str(v) for k, v in errors.items()}, "submitted": f}
    return render_template("directives/act_form.html", **context), 422


@bp.route("/orgs/<code>/transition-act/scan")
@login_required
def act_scan(code: str):
    org = require_org(get_by_code(code))
    act = register.get_act(org)
    path = register.scan_file(act)
    if path is None:
        abort(404)
    mimetype = {"pdf": "application/pdf", "png": "image/png", "jpeg": "image/jpeg"}
    return send_file(path, mimetype=mimetype[act.scan_type], as_attachment=True,
                     download_name=f"act-{org.code}.{path.suffix.lstrip('.')}")


# --- public channels ------------------------------------------------------------------


@bp.route("/channels/")
@login_required
def channels_summary():
    summary = channels.region_summary(current_user)
    missing = get_session().execute(
        channels.without_max(current_user).order_by(Organisation.name).limit(200)).all()
    return render_template("directives/channels.html", total=summary[0], rows=summary[1:],
                           missing=missing, **_labels())


@bp.route("/orgs/<code>/channels")
@login_required
def org_channels(code: str):
    org = require_org(get_by_code(code))
    return render_template("directives/org_channels.html", org=org,
                           channels=channels.org_channels(org), **_labels())


# --- the ministry report ----------------------------------------------------------------


def _report_org() -> Organisation:
    code = (request.values.get("org") or "").strip()
    if code:
        return require_org(get_by_code(code))
    tops = top_orgs(current_user)
    if not tops:
        abort(404)
    return tops[0]


@bp.route("/reports/ministry", methods=["GET", "POST"])
@login_required
def ministry():
    org = _report_org()
    if request.method == "POST":
        if not can_write():
            abort(403)
        run, _data = report.produce(org, current_user)
        get_session().commit()
        flash(_("The report is produced: %(n)d organisations.", n=run.rows), "success")
        return redirect(url_for("directives.ministry", org=org.code) + f"#run-{run.id}")
    rows, columns = report.report_rows(org, current_user)
    per = current_app.config["PER_PAGE"]
    pages = max(1, -(-len(rows) // per))
    number = min(max(1, request.args.get("page", 1, type=int)), pages)
    users = {}
    runs = report.runs(org)
    if runs:
        ids = {r.produced_by_id for r in runs} | {r.signed_by_id for r in runs}
        users = {u.id: u for u in get_session().exec(
            select(User).where(User.id.in_([i for i in ids if i]))).all()}
    return render_template("directives/report.html", org=org, rows=rows[(number - 1) * per:
                                                                         number * per],
                           total=len(rows), number=number, pages=pages, columns=columns,
                           runs=runs, users=users, can_write=can_write(),
                           tops=top_orgs(current_user), **_labels())


def _visible_run(run_id: int) -> ReportRun:
    run = get_session().get(ReportRun, run_id)
    if run is None or not can_see_org(get_session().get(Organisation, run.org_id)):
        abort(404)
    return run


@bp.route("/reports/ministry/<int:run_id>.xlsx")
@login_required
def ministry_file(run_id: int):
    run = _visible_run(run_id)
    org = get_session().get(Organisation, run.org_id)
    path = report.run_file(run)
    if not path.is_file():
        abort(404)
    stamp = run.produced_at.astimezone(tz())
    return send_file(io.BytesIO(path.read_bytes()), as_attachment=True,
                     download_name=f"ministry-report-{org.code}-{stamp:%Y%m%d}-{run.id}.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument."
                              "spreadsheetml.sheet")


@bp.route("/reports/ministry/<int:run_id>/sign-off", methods=["POST"])
@roles_required("admin", "coordinator")
def ministry_sign_off(run_id: int):
    run = _visible_run(run_id)
    org = get_session().get(Organisation, run.org_id)
    try:
        report.sign_off(run, current_user)
    except service.DirectiveError as exc:
        get_session().rollback()
        for reason in exc.errors.values():
            flash(str(reason), "error")
    else:
        get_session().commit()
        flash(_("The report is signed off."), "success")
    return redirect(url_for("directives.ministry", org=org.code) + f"#run-{run.id}")


@bp.app_template_global("metric_label")
def metric_label(metric: str) -> str:
    """A directive metric's name, for other features' templates (the attention page)."""
    return str(service.METRIC_LABELS.get(metric, metric))


@bp.app_template_global("channel_label")
def channel_label(status: str) -> str:
    return str(channels.STATUS_LABELS.get(status, status))
