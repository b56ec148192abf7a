"""``/healthz``, ``/readyz``, ``/metrics`` and the admin page «Состояние системы»."""

from __future__ import annotations

import hmac

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask_login import login_required

from migrator.auth.service import roles_required
from migrator.db import get_session
from migrator.ops import checks, metrics, status

bp = Blueprint("ops", __name__)


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
