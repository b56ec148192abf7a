"""Pages "Max chats": the chats the bot was added to, their pre-flight state and mapping."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlmodel import select

from migrator.auth.service import can_see_org, can_write, roles_required
from migrator.core.confirm import confirm_action
from migrator.core.pagination import paginate
from migrator.core.params import parse_int
from migrator.core.urls import local_path
from migrator.db import get_session
from migrator.engine.models import Step
from migrator.groups.service import get_group_by_key
from migrator.max import breaker, service
from migrator.max.forms import LinkChatForm, LinkGroupForm, RegisterChatForm, UnlinkGroupForm
from migrator.max.models import CHAT_STATUSES, PERMISSION_LABELS, MaxChat
from migrator.org.models import Organisation
from migrator.waves.models import Wave

log = logging.getLogger("migrator.max")

bp = Blueprint("max", __name__, url_prefix="/max")

STATUS_LABELS = {"discovered": _l("discovered"), "linked": _l("linked"),
                 "removed": _l("bot removed")}
LINK_ERROR_KEY = "max_link_error"

CONFLICT_MESSAGES = {
    "group_already_linked": _l("The group is already linked to another Max chat; "
                               "unlink it first."),
    "chat_removed": _l("The bot was removed from this Max chat: it cannot be linked."),
    "other_organisation": _l("This Max chat serves groups of another organisation."),
}


def conflict_text(exc: service.LinkConflict) -> str:
    return str(CONFLICT_MESSAGES.get(exc.code, exc.message))


def _visible_chat(chat_pk: int) -> MaxChat:
    chat = get_session().get(MaxChat, chat_pk)
    if chat is None or not service.can_see_chat(chat, current_user):
        abort(404)
    return chat


@bp.app_context_processor
def max_banner():
    """``max_auth_broken``: Max refuses the bot token and all Max work is stopped."""
    return {"max_auth_broken": current_user.is_authenticated and breaker.banner_visible()}


@bp.app_template_global()
def max_permission_label(name: str) -> str:
    return str(PERMISSION_LABELS.get(name, name))


bp.add_app_template_filter(max_permission_label, "permission_label")


def rights_problem(chat: MaxChat) -> str | None:
    """What keeps the bot from doing the migration in ``chat``, in the reader's language
    (the missing rights named); ``None`` when it is ready or was not checked yet."""
    if chat.status == "removed":
        return _("the bot was removed from the chat")
    if chat.checked_at is None:
        return None
    missing = chat.missing_permissions
    if not missing:
        return None
    rights = ", ".join(max_permission_label(p) for p in missing)
    if not chat.bot_is_admin:
        return _("the bot is not an administrator of the chat (it needs the rights: "
                 "%(rights)s)", rights=rights)
    return _("the bot lacks the rights: %(rights)s", rights=rights)


def _warn_rights(chat: MaxChat) -> None:
    """After a link: say at once when the bot cannot work in the chat yet."""
    problem = rights_problem(chat)
    if problem is None and chat.checked_at is None:
        problem = _("the bot's rights in the chat were not checked yet")
    if problem:
        flash(_("Attention: %(problem)s. Until this is fixed, the group's steps that need "
                "the chat wait. Make the bot an administrator of the chat in Max with these "
                "rights, then press «Re-check title and rights» on the chat's page.",
                problem=problem), "warning")


REGISTER_ERRORS = {
    "not_found": _l("Max knows no chat with this ID."),
    "bot_not_in_chat": _l("The bot is not in this chat. Add it as an administrator first."),
    "not_a_chat": _l("This is not a group chat."),
    "unavailable": _l("Max did not answer. Try again later."),
}


@bp.get("/chats")
@login_required
def chats():
    return _chats_page(RegisterChatForm(formdata=None))


def _chats_page(form: RegisterChatForm, status_code: int = 200):
    query = sa.select(MaxChat, Organisation).outerjoin(Organisation,
                                                       Organisation.id == MaxChat.org_id)
    query = service.visible_chats_query(current_user, query)
    status = request.args.get("status", "")
    if status in CHAT_STATUSES:
        query = query.where(MaxChat.status == status)
    text = request.args.get("q", "").strip()
    if text:
        cond = service.title_contains(text)
        if text.lstrip("-").isdigit():
            cond = sa.or_(cond, MaxChat.chat_id == int(text))
        query = query.where(cond)
    page = paginate(query, sorts={"title": MaxChat.title, "added": MaxChat.added_at,
                                  "status": MaxChat.status, "checked": MaxChat.checked_at},
                    default_sort="title", per_page=current_app.config["PER_PAGE"])
    keys = service.group_keys_by_chat([c.id for c, _org in page.items], current_user)
    return render_template("max/chats.html", page=page, keys=keys, status=status, q=text,
                           statuses=STATUS_LABELS, can_write=can_write(),
                           register_form=form), status_code


@bp.post("/chats/register")
@roles_required("admin", "coordinator")
def register_chat():
    """«Добавить чат по ID»: make a chat known whose bot_added was missed."""
    form = RegisterChatForm()
    if not form.validate_on_submit():
        return _chats_page(form, 400)
    org = None
    code = (form.org.data or "").strip()
    if code:
        org = get_session().scalar(sa.select(Organisation).where(Organisation.code == code))
        if org is None or not can_see_org(org):
            form.org.errors = [_("No organisation with this code in your scope.")]
            return _chats_page(form, 400)
    elif current_user.role != "admin":
        form.org.errors = [_("Give the code of the organisation the chat serves.")]
        return _chats_page(form, 400)
    try:
        with service.get_client(timeout=5.0, max_retries=1) as client:
            chat, created = service.register_chat(form.chat_id.data, client,
                                                  org_id=org.id if org else None)
    except ValueError:
        form.chat_id.errors = [_("the bot token is not configured")]
        return _chats_page(form, 400)
    except service.RegisterError as exc:
        get_session().rollback()
        form.chat_id.errors = [str(REGISTER_ERRORS.get(exc.code, exc.code))]
        return _chats_page(form, 400)
    if not service.can_see_chat(chat, current_user):
        form.chat_id.errors = [_("This chat is already known and serves another organisation.")]
        return _chats_page(form, 409)
    if created:
        flash(_("The chat «%(title)s» was added.", title=chat.title or chat.chat_id), "success")
    else:
        flash(_("This chat is already known."), "info")
    return redirect(url_for("max.chat", chat_pk=chat.id))


def _chat_page(chat: MaxChat, form: LinkGroupForm | None = None, error: str | None = None,
               status: int = 200):
    form = form or LinkGroupForm()
    candidates = service.linkable_groups(chat, current_user) if chat.status != "removed" else []
    form.group.choices = [("", "—")] + [(g.key, f"{g.name} ({g.key})") for g in candidates]
    org = get_session().get(Organisation, chat.org_id) if chat.org_id else None
    return render_template(
        "max/chat.html", chat=chat, org=org, groups=service.groups_of_chat(chat, current_user),
        members=service.members_present(chat), form=form, error=error,
        candidates=candidates, statuses=STATUS_LABELS, can_write=can_write(),
    ), status


@bp.get("/chats/<int:chat_pk>")
@login_required
def chat(chat_pk: int):
    return _chat_page(_visible_chat(chat_pk))


@bp.post("/chats/<int:chat_pk>/refresh")
@roles_required("admin", "coordinator")
def refresh(chat_pk: int):
    chat = _visible_chat(chat_pk)
    max_id = chat.chat_id
    try:
        with service.get_client(timeout=5.0, max_retries=1) as client:
            error = service.refresh_chat(max_id, client)
    except ValueError:
        error = _("the bot token is not configured")
    if error:
        flash(_("The chat could not be re-checked: %(error)s", error=error), "error")
    else:
        flash(_("The chat «%(title)s» was re-checked.", title=chat.title or chat.chat_id),
              "success")
    target = request.form.get("next", "")
    if target == "list":
        return redirect(url_for("max.chats"))
    return redirect(local_path(target) or url_for("max.chat", chat_pk=chat_pk))


@bp.post("/chats/<int:chat_pk>/link")
@roles_required("admin", "coordinator")
def link_from_chat(chat_pk: int):
    chat = _visible_chat(chat_pk)
    form = LinkGroupForm()
    if not form.validate_on_submit() or not form.group.data:
        return _chat_page(chat, form, _("Choose a source group."), 400)
    group = get_group_by_key(form.group.data)
    try:
        service.link_group(group, chat, current_user)
    except service.LinkConflict as exc:
        get_session().rollback()
        return _chat_page(chat, form, conflict_text(exc), 409)
    get_session().commit()
    flash(_("Group «%(name)s» is linked to the Max chat «%(title)s».", name=group.name,
            title=chat.title or chat.chat_id), "success")
    _warn_rights(chat)
    return redirect(url_for("max.chat", chat_pk=chat.id))


@bp.post("/groups/<key>/link")
@roles_required("admin", "coordinator")
def link_from_group(key: str):
    group = get_group_by_key(key)
    form = LinkChatForm()
    target = url_for("groups.detail", key=group.key) + "#max-link"
    raw = form.chat.data if form.validate_on_submit() else ""
    chat_id = parse_int(str(raw or ""), 1)
    if chat_id is None:
        session[LINK_ERROR_KEY] = _("Choose a Max chat.")
        return redirect(target)
    chat = _visible_chat(chat_id)
    try:
        service.link_group(group, chat, current_user)
    except service.LinkConflict as exc:
        get_session().rollback()
        session[LINK_ERROR_KEY] = conflict_text(exc)
        return redirect(target)
    get_session().commit()
    flash(_("Group «%(name)s» is linked to the Max chat «%(title)s».", name=group.name,
            title=chat.title or chat.chat_id), "success")
    _warn_rights(chat)
    return redirect(target)


class _NotLinked(Exception):
    pass


OPEN_WAVE = ("planned", "active", "paused")
FINISHED_STEPS = ("succeeded", "skipped")


@bp.route("/groups/<key>/unlink", methods=["GET", "POST"])
@roles_required("admin", "coordinator")
def unlink_from_group(key: str):
    """Unlink the group from its Max chat: what will happen, the reason (required while the
    group's wave still has steps to run), then the unlink."""
    group = get_group_by_key(key)
    db = get_session()
    chat = db.get(MaxChat, group.max_chat_id) if group.max_chat_id else None
    wave = db.get(Wave, group.wave_id) if group.wave_id else None
    open_steps = [s for s in db.exec(select(Step).where(Step.group_id == group.id)).all()
                  if s.status not in FINISHED_STEPS]
    in_wave = wave is not None and wave.status in OPEN_WAVE and bool(open_steps)
    form = UnlinkGroupForm()
    if not in_wave:
        form.reason_optional()
    target = url_for("groups.detail", key=group.key) + "#max-link"

    def check() -> None:
        if chat is None:
            raise _NotLinked(_("The group is not linked to a Max chat."))

    def act() -> str:
        service.unlink_group(group, current_user, form.reason_text)
        return _("The group «%(name)s» is no longer linked to the Max chat “%(title)s”.",
                 name=group.name, title=chat.title or chat.chat_id)

    outcome = confirm_action(form, check=check, act=act, done=target, refusals=(_NotLinked,))
    if outcome.response is not None:
        return outcome.response
    return render_template("max/unlink.html", group=group, chat=chat, wave=wave,
                           in_wave=in_wave, open_steps=open_steps, form=form,
                           refused=outcome.refused,
                           others=[g for g in service.groups_of_chat(chat) if g.id != group.id]
                           if chat else []), outcome.status
