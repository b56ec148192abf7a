"""The audit log pages: the filtered list (keyset pages), one event, CSV/JSONL exports."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from migrator.audit import labels, query
from migrator.audit.query import AuditFilter
from migrator.audit.service import canonical_content, compute_hash, record
from migrator.auth.service import roles_required
from migrator.core.i18n import tz_label
from migrator.core.params import int_arg
from migrator.db import get_session, utcnow
from migrator.org.models import Organisation

bp = Blueprint("audit", __name__, url_prefix="/audit")
log = logging.getLogger("migrator.audit")
READERS = ("admin", "auditor", "coordinator")
ACTOR_TYPES = {"user": _l("user"), "job": _l("job"), "max": _l("Max"), "system": _l("system")}


def _int_arg(name: str) -> int | None:
    return int_arg(name, None, strict=False)


def org_labels(org_ids) -> dict[int, Organisation]:
    ids = {i for i in org_ids if i is not None}
    if not ids:
        return {}
    rows = get_session().scalars(sa.select(Organisation).where(Organisation.id.in_(ids)))
    return {o.id: o for o in rows}


def summary_text(raw: str, limit: int = 160) -> str:
    """A one-line view of a summary's JSON for tables."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw[:limit]
    if not data:
        return ""
    if isinstance(data, dict):
        text = ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in data.items())
    else:
        text = json.dumps(data, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@bp.app_template_filter("changed_by")
def changed_by_filter(value: str | None) -> str:
    """``{{ step.changed_by|changed_by }}``: who last changed a step, as a name."""
    return labels.changed_by_text(value)


@bp.app_context_processor
def audit_helpers():
    return {"actor_type_label": lambda t: ACTOR_TYPES.get(t, t),
            "audit_summary_text": summary_text,
            "audit_action": labels.action_text,
            "audit_actor": lambda ev: labels.actor_text(ev.actor_type, ev.actor_id,
                                                        ev.actor_label),
            "audit_object_type": labels.object_type_text,
            "audit_summary": labels.summary_html}


@bp.route("/")
@roles_required(*READERS)
def events():
    f = AuditFilter.from_args(request.args)
    p = query.plan(f, current_user)
    page = query.keyset_page(p, before=_int_arg("before"), after=_int_arg("after"),
                             per_page=current_app.config["PER_PAGE"])
    return render_template(
        "audit/events.html", f=f, page=page, orgs=org_labels(e.org_id for e in page.events),
        actions=query.distinct_actions()[:500],
        errors=[_("Enter dates as YYYY-MM-DD.")] if f.errors else [],
    )


@bp.route("/<int:seq>")
@roles_required(*READERS)
def event(seq: int):
    table = query.T
    session = get_session()
    ev = session.execute(sa.select(table).where(table.c.seq == seq)).first()
    if ev is None:
        abort(404)
    visible = query.scope_org_ids(current_user)
    if visible is not None and ev.org_id not in visible:
        abort(404)
    content = canonical_content(ev)
    try:
        pretty = json.dumps(json.loads(content), ensure_ascii=False, indent=2)
        summary = json.dumps(json.loads(ev.summary), ensure_ascii=False, indent=2)
    except ValueError:
        pretty, summary = content, ev.summary
    return render_template(
        "audit/event.html", ev=ev, content=content, pretty=pretty, summary=summary,
        hash_ok=compute_hash(ev) == ev.hash, org=org_labels([ev.org_id]).get(ev.org_id),
        has_next=session.scalar(sa.select(table.c.seq).where(table.c.seq == seq + 1)) is not None,
    )


EXPORTS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl"),
}


@bp.route("/export.<fmt>")
@roles_required(*READERS)
def export(fmt: str):
    """Stream the filtered selection, oldest first; the export itself is audited first."""
    if fmt not in EXPORTS:
        abort(404)
    f = AuditFilter.from_args(request.args)
    record("audit.export", object_type="audit", summary={"format": fmt, "filters": f.args()})
    session = get_session()
    session.commit()
    log.info("audit export (%s, %s) by %s", fmt, f.args(), current_user.email)
    p = query.plan(f, current_user)
    rows = query.iter_events(p)
    if fmt == "csv":
        codes = dict(session.execute(sa.select(Organisation.id, Organisation.code)).all())
        body = query.csv_chunks(rows, codes, tz_label())
    else:
        body = query.jsonl_chunks(rows)
    mimetype, ext = EXPORTS[fmt]
    local = utcnow().astimezone(ZoneInfo(current_app.config["MIGRATOR_TZ"]))
    stamp = f"{local:%Y-%m-%d-%H%M%S}.{ext}"
    russian = quote(f"журнал-аудита-{stamp}")  # RFC 6266: the name people see, local time
    return Response(stream_with_context(body), mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename=\"audit-{stamp}\"; "
                               f"filename*=UTF-8''{russian}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
    })
