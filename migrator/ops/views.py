"""``/healthz``, ``/readyz``, ``/metrics`` and the admin page «Состояние системы»."""

from __future__ import annotations

import hmac
import re

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask_login import login_required
from markupsafe import Markup, escape

from migrator.auth.service import roles_required
from migrator.db import get_session
from migrator.ops import checks, metrics, status

bp = Blueprint("ops", __name__)

# A run of text without Cyrillic that starts with a Latin letter: a setting's name, a command,
# another system's error text. The status page shows these as code, the prose around them as
# it is.
_TECHNICAL = re.compile(r"[A-Za-z_\[][^А-Яа-яЁё«»;]*[\w\])]")


@bp.app_template_filter("technical")
def technical_html(text) -> Markup:
    """``{{ check.text()|technical }}``: technical details in the text marked as code."""
    text = str(text or "")
    out, last = [], 0
    for m in _TECHNICAL.finditer(text):
        out += [escape(text[last:m.start()]), Markup("<code>%s</code>") % m.group(0)]
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@bp.get("/healthz")
def healthz():
    """The process answers and so does the database (no sign-in, nothing remote)."""
    try:
        get_session().execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return jsonify({"status": "fail", "database": "fail"}), 503
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    report = checks.readiness()
    resp = jsonify(report.as_json())
    resp.status_code = 200 if report.ok else 503
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _metrics_allowed() -> bool:
    token = current_app.config.get("METRICS_TOKEN") or ""
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@bp.get("/metrics")
def prometheus():
    if not _metrics_allowed():
        return Response("unauthorized\n", 401, {"WWW-Authenticate": "Bearer"},
                        mimetype="text/plain")
    return Response(metrics.render(), 200, {"Cache-Control": "no-store"},
                    content_type=metrics.CONTENT_TYPE)


@bp.get("/admin/status")
@login_required
@roles_required("admin")
def system_status():
    return render_template("ops/status.html", **status.page_context())
