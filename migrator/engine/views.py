"""Step control from the group page: retry, skip, pause/resume, confirm, override, reset."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required

from migrator.auth.service import roles_required
from migrator.core.urls import local_path
from migrator.db import get_session
from migrator.engine import control
from migrator.engine.models import STEP_KINDS
from migrator.groups.service import get_group_by_key
from migrator.waves.views import group_link

bp = Blueprint("engine", __name__, url_prefix="/engine")

ACTIONS = {
    "retry": lambda s, u, text: control.retry(s, u),
    "skip": lambda s, u, text: control.skip(s, u, text),
    "pause": lambda s, u, text: control.pause(s, u),
    "resume": lambda s, u, text: control.resume(s, u),
    "confirm": lambda s, u, text: control.confirm(s, u, text),
    "override": lambda s, u, text: control.override(s, u, text),
}
ADMIN_ACTIONS = {
    "reset": lambda s, u, text: control.reset(s, u),
    "mark-failed": lambda s, u, text: control.mark_failed(s, u, text),
}


@bp.post("/groups/<key>/members/retry")
@login_required
@roles_required("admin", "coordinator")
def member_retry(key: str):
    """Retry adding one member (``employee_id``) or every member Max refused."""
    group = get_group_by_key(key)
    raw = request.form.get("employee_id", "").strip()
    ids = None
    if raw:
        if not raw.isdigit() or int(raw) > 2**31 - 1:
            abort(400)
        ids = [int(raw)]
    try:
        n = control.retry_members(group, current_user, ids)
        get_session().commit()
        flash(ngettext("%(num)d member will be added again at the next run.",
                       "%(num)d members will be added again at the next run.", n), "success")
    except control.ControlError as exc:
        get_session().rollback()
        flash(str(exc), "error")
    return redirect(_back(group))


def _back(group) -> str:
    return local_path(request.form.get("next")) or group_link(group.key) or "/"


@bp.post("/groups/<key>/steps/<kind>/<action>")
@login_required
@roles_required("admin", "coordinator")
def step_action(key: str, kind: str, action: str):
    group = get_group_by_key(key)
    if kind not in STEP_KINDS:
        abort(404)
    fn = ACTIONS.get(action)
    if fn is None and current_user.role == "admin":
        fn = ADMIN_ACTIONS.get(action)
    if fn is None:
        abort(404)
    step = control.get_step(group, kind)
    if step is None:
        abort(404)
    try:
        fn(step, current_user, request.form.get("text", ""))
        get_session().commit()
        flash(_("Done."), "success")
    except control.ControlError as exc:
        get_session().rollback()
        flash(str(exc), "error")
    return redirect(_back(group))
