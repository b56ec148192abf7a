"""Step control from the group page: retry, skip, pause/resume, confirm, override; the
destructive ones - resetting a step, marking it failed, undoing a group's move - each on a
confirmation page with the reason (migrator/core/confirm.py)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required

from migrator.auth.service import roles_required
from migrator.core.confirm import confirm_action
from migrator.core.urls import local_path
from migrator.db import get_session
from migrator.engine import control, rollback
from migrator.engine.forms import MarkFailedForm, ResetStepForm, RollbackForm
from migrator.engine.models import STEP_KINDS
from migrator.groups.attention import STEP_KIND_LABELS
from migrator.groups.models import GroupMember
from migrator.groups.service import get_group_by_key, refused_condition
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
# What the flash says was done, to which step of which group.
DONE = {
    "retry": _l("Retry scheduled: step «%(step)s», group «%(group)s»."),
    "skip": _l("Skipped: step «%(step)s», group «%(group)s»."),
    "pause": _l("Paused: step «%(step)s», group «%(group)s»."),
    "resume": _l("Resumed: step «%(step)s», group «%(group)s»."),
    "confirm": _l("Confirmed: step «%(step)s», group «%(group)s»."),
    "override": _l("Cutover allowed below the coverage threshold: group «%(group)s»."),
}


@bp.post("/groups/<key>/members/retry")
@login_required
@roles_required("admin", "coordinator")
def member_retry(key: str):
    """Retry adding one member (``employee_id``), those refused for one ``reason``, or
    every member Max refused."""
    group = get_group_by_key(key)
    raw = request.form.get("employee_id", "").strip()
    reason = request.form.get("reason", "").strip()[:200]
    ids = None
    if raw:
        if not raw.isdigit() or int(raw) > 2**31 - 1:
            abort(400)
        ids = [int(raw)]
    elif reason:
        ids = list(get_session().scalars(sa.select(GroupMember.employee_id).where(
            GroupMember.group_id == group.id, refused_condition(reason))))
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
    return local_path(request.values.get("next")) or group_link(group.key) or "/"


@bp.post("/groups/<key>/steps/<kind>/<action>")
@login_required
@roles_required("admin", "coordinator")
def step_action(key: str, kind: str, action: str):
    group = get_group_by_key(key)
    if kind not in STEP_KINDS:
        abort(404)
    fn = ACTIONS.get(action)
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

    def act() -> str:
        rollback.request_rollback(group, current_user, form.reason_text)
        return _("Undoing the move of group «%(name)s»: progress is shown below.",
                 name=group.name)

    outcome = confirm_action(form, check=lambda: rollback.check(group, current_user),
                             act=act, done=lambda: group_link(group.key) or "/",
                             refusals=(rollback.RollbackRefused,))
    if outcome.response is not None:
        return outcome.response
    session = get_session()
    chat = session.get(MaxChat, group.max_chat_id) if group.max_chat_id else None
    announce = control.get_step(group, "announce")
    return render_template(
        "engine/rollback.html", group=group, form=form, refused=outcome.refused, chat=chat,
        brought_in=rollback.brought_in_count(group),
        pinned=bool(announce and announce.pinned_at), after_cutover=rollback.after_cutover(group),
        open_steps=len([s for s in control.group_steps(group)
                        if s.status not in rollback.FINISHED_STEPS])), outcome.status


# An administrator's actions that throw a step's progress away: a confirmation page each.
ADMIN_STEP_ACTIONS = {
    "reset": (ResetStepForm, control.reset),
    "mark-failed": (MarkFailedForm, control.mark_failed),
}


def _admin_step_action(key: str, kind: str, action: str):
    group = get_group_by_key(key)
    if kind not in STEP_KINDS:
        abort(404)
    step = control.get_step(group, kind)
    if step is None:
        abort(404)
    form_class, fn = ADMIN_STEP_ACTIONS[action]
    form = form_class()

    def act() -> str:
        fn(step, current_user, form.reason_text)
        if action == "reset":
            return _("The step “%(step)s” of the group «%(group)s» was reset.",
                     step=STEP_KIND_LABELS[kind], group=group.name)
        return _("The step “%(step)s” of the group «%(group)s» was marked failed.",
                 step=STEP_KIND_LABELS[kind], group=group.name)

    outcome = confirm_action(form, check=lambda: control.check(step, action), act=act,
                             done=lambda: _back(group), refusals=(control.ControlError,))
    if outcome.response is not None:
        return outcome.response
    return render_template("engine/step_confirm.html", group=group, step=step, action=action,
                           form=form, refused=outcome.refused,
                           next=local_path(request.values.get("next"))), outcome.status


@bp.route("/groups/<key>/steps/<kind>/reset", methods=["GET", "POST"])
@login_required
@roles_required("admin")
def reset_step(key: str, kind: str):
    """Reset a step (administrators): what will happen, the reason, then the reset."""
    return _admin_step_action(key, kind, "reset")


@bp.route("/groups/<key>/steps/<kind>/mark-failed", methods=["GET", "POST"])
@login_required
@roles_required("admin")
def mark_step_failed(key: str, kind: str):
    """Mark a step failed (administrators): what will happen, the reason, then the change."""
    return _admin_step_action(key, kind, "mark-failed")
