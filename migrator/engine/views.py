"""Step control from the group page: retry, skip, pause/resume, confirm, override, reset;
undoing a group's move (a confirmation page with the reason)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required

from migrator.auth.service import roles_required
from migrator.core.urls import local_path
from migrator.db import get_session
from migrator.engine import control, rollback
from migrator.engine.forms import RollbackForm
from migrator.engine.models import STEP_KINDS
from migrator.groups.attention import STEP_KIND_LABELS
from migrator.groups.service import get_group_by_key
from migrator.max.models import MaxChat
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
# What the flash says was done, to which step of which group.
DONE = {
    "retry": _l("Retry scheduled: step «%(step)s», group «%(group)s»."),
    "skip": _l("Skipped: step «%(step)s», group «%(group)s»."),
    "pause": _l("Paused: step «%(step)s», group «%(group)s»."),
    "resume": _l("Resumed: step «%(step)s», group «%(group)s»."),
    "confirm": _l("Confirmed: step «%(step)s», group «%(group)s»."),
    "override": _l("Cutover allowed below the coverage threshold: group «%(group)s»."),
    "reset": _l("Reset to the start: step «%(step)s», group «%(group)s»."),
    "mark-failed": _l("Marked as failed: step «%(step)s», group «%(group)s»."),
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
        flash(ngettext("Adding again scheduled: %(num)d member, group «%(group)s».",
                       "Adding again scheduled: %(num)d members, group «%(group)s».", n,
                       group=group.name), "success")
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
        flash(str(DONE[action]) % {"step": STEP_KIND_LABELS[kind], "group": group.name},
              "success")
    except control.ControlError as exc:
        get_session().rollback()
        flash(str(exc), "error")
    return redirect(_back(group))


@bp.route("/groups/<key>/rollback", methods=["GET", "POST"])
@login_required
@roles_required("admin", "coordinator")
def rollback_group(key: str):
    """Undo the group's move: what will happen, the reason, then the request."""
    group = get_group_by_key(key)
    form = RollbackForm()
    refused = None
    try:
        rollback.check(group, current_user)
    except rollback.RollbackRefused as exc:
        refused = exc.message
    status = 200
    if request.method == "POST":
        if refused is not None:
            status = 409
        elif form.validate_on_submit():
            try:
                rollback.request_rollback(group, current_user, form.reason.data)
                get_session().commit()
                flash(_("Undoing the move of group «%(name)s»: progress is shown below.",
                        name=group.name), "success")
                return redirect(group_link(group.key) or "/")
            except rollback.RollbackRefused as exc:
                get_session().rollback()
                refused, status = exc.message, 409
        else:
            status = 400
    session = get_session()
    chat = session.get(MaxChat, group.max_chat_id) if group.max_chat_id else None
    announce = control.get_step(group, "announce")
    return render_template(
        "engine/rollback.html", group=group, form=form, refused=refused, chat=chat,
        brought_in=rollback.brought_in_count(group),
        pinned=bool(announce and announce.pinned_at), after_cutover=rollback.after_cutover(group),
        open_steps=len([s for s in control.group_steps(group)
                        if s.status not in rollback.FINISHED_STEPS])), status
