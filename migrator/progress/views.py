"""Progress pages: the "needs attention" list, the printable report and its XLSX export.

The dashboard itself is ``core.dashboard`` (the home page); it uses :func:`dashboard_context`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlmodel import select
from werkzeug.routing import BuildError

from migrator.attention.service import params_of, text_of
from migrator.audit.service import record
from migrator.auth.service import can_see_org, require_org
from migrator.core.pagination import paginate
from migrator.db import get_session, utcnow
from migrator.directives import service as directives
from migrator.directives.charts import milestone_chart
from migrator.org.models import Organisation
from migrator.org.service import get_by_code
from migrator.progress import service, xlsx
from migrator.progress.attention import SECTION_BY_KEY, overview
from migrator.progress.charts import progress_chart

bp = Blueprint("progress", __name__)


@bp.app_context_processor
def overdue_helpers() -> dict:
    """The one definition of "overdue" for every template (steps and waves)."""
    return {"step_overdue": service.step_overdue, "wave_overdue": service.wave_overdue}

ATTENTION_CAP = 10  # rows per section on the overview; "show all" pages the rest


# --- helpers shared with the dashboard ------------------------------------------------------


def maybe_url(endpoint: str, *attempts: dict, **query) -> str | None:
    """``url_for`` if another feature provides ``endpoint`` (tried with each set of
    arguments in turn), else ``None``."""
    if endpoint not in current_app.view_functions:
        return None
    for kwargs in attempts or ({},):
        try:
            return url_for(endpoint, **kwargs, **query)
        except BuildError:
            continue
    return None


def group_url(group) -> str | None:
    return maybe_url("groups.detail", {"key": group.key}, {"group_id": group.id},
                     {"id": group.id})


def wave_url(wave) -> str | None:
    wave_id = wave["id"] if isinstance(wave, dict) else wave.id
    return maybe_url("waves.detail", {"wave_id": wave_id}, {"id": wave_id})


def chat_url(chat) -> str | None:
    return maybe_url("max.chat", {"chat_pk": chat.id})


def employee_url(emp) -> str | None:
    return maybe_url("people.detail", {"employee_id": emp.id}) if emp is not None else None


def org_url(org) -> str:
    return maybe_url("org.detail", {"code": org.code}) or url_for("core.dashboard",
                                                                  org=org.code)


def groups_list_url(org: Organisation | None) -> str | None:
    return maybe_url("groups.groups", **({"org": org.code} if org else {}))


def selected_org() -> Organisation | None:
    """The organisation in ``?org=CODE``; 404 when unknown or outside the user's scope."""
    code = (request.args.get("org") or "").strip()
    if not code:
        return None
    return require_org(get_by_code(code))


def default_org(org: Organisation | None) -> Organisation | None:
    """With no ``?org``: a single visible top organisation is the starting node."""
    if org is not None:
        return org
    tops = service.top_orgs(current_user)
    return tops[0] if len(tops) == 1 else None


def breadcrumbs(org: Organisation | None) -> list[Organisation]:
    """The visible ancestors of ``org`` (root first), for the drill-down trail."""
    if org is None:
        return []
    ids = [int(p) for p in org.path.strip("/").split("/")[:-1]]
    if not ids:
        return []
    rows = {o.id: o for o in get_session().exec(
        select(Organisation).where(Organisation.id.in_(ids))).all()}
    return [rows[i] for i in ids if i in rows and can_see_org(rows[i])]


def chart_for(org: Organisation | None, fig) -> object:
    history = service.with_live_today(service.history(org, current_user), fig)
    deadline = fig.deadline.astimezone(service.tz()).date() if fig.deadline else None
    name = org.name if org else _("All your organisations")
    return progress_chart(history, deadline, name), history


def directive_charts(org: Organisation | None, today: date) -> dict:
    """The «Directives» section: the nearest directives over ``org`` (or the user's whole
    scope), each milestone's trajectory against the actual curve of the user's part."""
    items, total = directives.dashboard(current_user, org, today=today)
    shown = []
    for item in items:
        d = item.directive
        charts = [milestone_chart(d, st.milestone, item.series[st.milestone.metric],
                                  item.name, chart_id=f"directive-{d.id}-milestone-"
                                                      f"{st.milestone.id}")
                  for st in item.charted]
        shown.append((item, charts))
    return {"directive_items": shown, "directives_total": total,
            "directive_status_labels": directives.STATUS_LABELS}


def dashboard_context() -> dict:
    org = default_org(selected_org())
    fig = service.figures(org, current_user)
    chart, history = chart_for(org, fig)
    nearest = fig.nearest_wave
    today = service.local_today()
    return {
        "org": org, "fig": fig, "chart": chart, "history": history, "crumbs": breadcrumbs(org),
        "nearest": nearest, "group_url": group_url, "wave_url": wave_url,
        "groups_list_url": groups_list_url, "today": today,
        **directive_charts(org, today),
    }


LINKS = {"group_url": group_url, "wave_url": wave_url, "chat_url": chat_url,
         "employee_url": employee_url, "org_url": org_url, "item_text": text_of,
         "item_params": params_of}


# --- needs attention --------------------------------------------------------------------------


@bp.route("/attention")
@login_required
def attention():
    now = utcnow()
    key = request.args.get("section")
    if key:
        section = SECTION_BY_KEY.get(key) or abort(404)
        page = paginate(section.query(current_user, now), sorts=section.sorts,
                        default_sort=section.default_sort, tiebreak=section.keys,
                        count_query=section.total(current_user, now),
                        per_page=current_app.config["PER_PAGE"])
        blocks = [(section, page.items, page.total)]
        return render_template("progress/attention.html", blocks=blocks, page=page,
                               single=section, now=now, **LINKS)
    blocks = overview(current_user, now, ATTENTION_CAP)
    return render_template("progress/attention.html", blocks=blocks, page=None, single=None,
                           now=now, cap=ATTENTION_CAP, **LINKS)


# --- reports ------------------------------------------------------------------------------------


REPORT_LEVELS = 2  # the printable page shows two levels below the top; "all" shows every one


@bp.route("/progress/report")
@login_required
def report():
    org = default_org(selected_org())
    everything = request.args.get("levels") == "all"
    rows = service.report_rows(org, current_user, levels=None if everything else REPORT_LEVELS,
                               own=True)
    return render_template("progress/report.html", org=org, rows=rows, total=rows[0],
                           generated=utcnow(), today=service.local_today(),
                           everything=everything, levels=REPORT_LEVELS)


REPORT_COLUMNS = [
    (_l("Organisation code"), 14), (_l("Organisation"), 60), (_l("Employees"), 11),
    (_l("Linked to Max"), 11), (_l("Linked"), 10), (_l("Groups"), 9),
    (_l("Groups linked to a Max chat"), 12), (_l("Groups cut over"), 12), (_l("Members"), 10),
    (_l("Members in Max chats"), 12), (_l("Coverage"), 11), (_l("Deadline"), 12),
    (_l("Days left"), 9), (_l("Overdue steps"), 10),
]


def report_workbook(org: Organisation | None, rows: list) -> Iterator[bytes]:
    """The region's progress report as an XLSX workbook (one row per organisation), in
    chunks as it is written (:mod:`migrator.progress.xlsx`: streamed, constant memory). Text
    is written as text: a name starting with "=" is never a formula."""
    title = _("Progress of the migration to Max: %(name)s",
              name=org.name if org else _("all your organisations"))
    as_of = _("As of %(date)s", date=service.local_today().strftime("%d.%m.%Y"))
    header = [str(name) + (", %" if i in (4, 10) else "")
              for i, (name, _w) in enumerate(REPORT_COLUMNS)]
    total_label = _("Total")
    own_label = "    " + _("%(name)s: own employees and groups",
                          name=org.name if org else "")
    sheet = xlsx.Sheet(_("Progress")[:31], tuple(w for _n, w in REPORT_COLUMNS),
                       freeze_rows=4, freeze_cols=2)
    zone = service.tz()
    base = org.depth if org else 0
    plain = [xlsx.PLAIN] * 11 + [xlsx.DATE]
    bold = [xlsx.BOLD] * 11 + [xlsx.BOLD_DATE] + [xlsx.BOLD] * 2

    def cells():
        yield 0, [title], [xlsx.TITLE]
        yield 1, [as_of], []
        yield 3, header, [xlsx.BOLD] * len(header)
        # The total goes last, under the rows it sums (own row + the rows one level below).
        for n, row in enumerate([*rows[1:], rows[0]], start=1):
            o = row.org
            if n == len(rows):
                code, name = (o.code if o else ""), total_label
            elif row.own:
                code, name = o.code, own_label
            else:
                code, name = o.code, "    " * (o.depth - base) + o.name
            deadline = row.deadline.astimezone(zone).date() if row.deadline else None
            yield 3 + n, [code, name, row.employees, row.linked, row.linked_pct,
                          row.groups_total, row.groups_linked, row.groups_done,
                          row.members_total, row.members_in_chat, row.coverage_pct, deadline,
                          row.days_left, row.overdue_steps], bold if n == len(rows) else plain

    return xlsx.stream(sheet, cells())


@bp.route("/progress/report.xlsx")
@login_required
def report_xlsx():
    org = default_org(selected_org())
    rows = service.report_rows(org, current_user, own=True)
    data = report_workbook(org, rows)
    code, today = (org.code if org else "all"), service.local_today()
    name = f"ход-перехода-{code}-{today:%Y-%m-%d}.xlsx"  # the name people see, local date
    record("progress.export", object_type="organisation", object_id=org.id if org else None,
           org_id=org.id if org else None,
           summary={"format": "xlsx", "filters": dict(request.args.items()),
                    "org": org.code if org else None, "rows": max(len(rows) - 1, 0)})
    get_session().commit()
    resp = Response(stream_with_context(data),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    resp.headers.set("Content-Disposition", "attachment",
                     **xlsx.attachment(name, ascii_name=f"progress-{code}-{today:%Y%m%d}.xlsx"))
    return resp
