"""The dashboard, shared template helpers and error pages."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, render_template, send_from_directory
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from migrator.db import get_session, utcnow
from migrator.engine.models import Heartbeat
from migrator.progress.views import dashboard_context

bp = Blueprint("core", __name__)

ROLE_LABELS = {"admin": _l("administrator"), "coordinator": _l("coordinator"),
               "auditor": _l("auditor")}

# (endpoint, label, roles allowed or None for all). Features add their entries here.
NAV = [
    ("core.dashboard", _l("Dashboard"), None),
    ("progress.attention", _l("Needs attention"), None),
    ("org.tree", _l("Organisations"), None),
    ("people.employees", _l("Employees"), None),
    ("groups.groups", _l("Groups"), None),
    ("max.chats", _l("Max chats"), None),
    ("waves.waves", _l("Waves"), None),
    ("directives.index", _l("Directives"), None),
    ("imports.upload", _l("Import"), ("admin", "coordinator")),
    ("audit.events", _l("Audit log"), None),
    ("ops.system_status", _l("System status"), ("admin",)),
    ("training.index", _l("Training sandbox"), ("admin", "coordinator")),  # not in production
]


@bp.app_context_processor
def template_helpers():
    def nav_items():
        items = []
        for endpoint, label, roles in NAV:
            if endpoint not in current_app.view_functions:
                continue
            if roles is None or current_user.role in roles:
                items.append((endpoint, label))
        return items

    def scheduler_stale() -> bool:
        if not current_user.is_authenticated or current_user.role != "admin":
            return False
        hb = get_session().get(Heartbeat, "scheduler")
        return hb is not None and hb.seen_at < utcnow() - timedelta(minutes=2)

    return {
        "nav_items": nav_items,
        "role_label": lambda r: ROLE_LABELS.get(r, r),
        "current_locale": lambda: str(get_locale() or "ru"),
        "scheduler_stale": scheduler_stale() if current_user.is_authenticated else False,
    }


@bp.route("/")
@login_required
def dashboard():
    """Progress from the region down to one organisation (``?org=CODE``), within scope."""
    return render_template("core/dashboard.html", **dashboard_context())


@bp.route("/favicon.ico")
def favicon():
    """Browsers ask for it on every site, pages or not."""
    return send_from_directory(current_app.static_folder, "favicon.ico",
                               mimetype="image/vnd.microsoft.icon", max_age=86400)


@bp.app_errorhandler(403)
def forbidden(_e):
    return render_template("core/error.html", code=403), 403


@bp.app_errorhandler(404)
def not_found(_e):
    return render_template("core/error.html", code=404), 404


@bp.app_errorhandler(413)
def too_large(_e):
    limit_mb = max(1, round(current_app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)))
    return render_template("core/error.html", code=413, limit_mb=limit_mb), 413
