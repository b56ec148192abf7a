"""The training sandbox page (development and demo only): see :mod:`migrator.demo.training`.

Each form posts on its own route; a refused form is shown again with its errors inline,
a done action is flashed and the page shown again (post/redirect/get).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from migrator.auth.service import roles_required
from migrator.demo import training
from migrator.demo.forms import BotForm, ChatForm, MemberForm, PersonForm, StartForm
from migrator.demo.training import Unreachable
from migrator.sandbox.client import SandboxControlError

bp = Blueprint("training", __name__, url_prefix="/sandbox")

FORMS = {"chat": ChatForm, "bot": BotForm, "member": MemberForm, "person": PersonForm,
         "start": StartForm}


@bp.before_request
def _only_outside_production():
    if not training.available(current_app.config):
        abort(404)


def _forms(posted: str | None, world: training.World | None, invitations) -> dict:
    """Every form of the page; only ``posted`` reads the request."""
    forms = {name: (cls(prefix=name) if name == posted else cls(prefix=name, formdata=None))
             for name, cls in FORMS.items()}
    chats = [SelectChoice(c["chat_id"], f"{c.get('title') or '—'} ({c['chat_id']})")
             for c in (world.chats if world else [])]
    people = [SelectChoice(u["user_id"], f"{training.full_name(u)} ({u['user_id']})")
              for u in (world.users if world else [])]
    forms["chat"].owner.choices = people
    forms["bot"].chat.choices = chats
    forms["member"].chat.choices = chats
    forms["member"].person.choices = people
    forms["start"].person.choices = [
        SelectChoice("", _("— a new person, named as the employee —")),
        *(SelectChoice(str(p.value), p.label) for p in people)]
    forms["start"].invitation.choices = [SelectChoice("", _("— none —")), *(
        SelectChoice(str(i.employee_id), f"{i.name} <{i.email}>") for i in invitations)]
    return forms


def _world(sandbox) -> training.World | None:
    try:
        return training.world(sandbox)
    except Unreachable:
        return None


def _page(posted: str | None = None):
    """The page, or (with ``posted``) that form validated: ``(forms, world, response)``,
    ``response`` set when the form was refused."""
    with training.control() as sandbox:
        world = _world(sandbox)
    invitations = training.invitations(current_user)
    forms = _forms(posted, world, invitations)
    if posted is None or (world is not None and forms[posted].validate_on_submit()):
        response = None if posted else render_template(
            "training/index.html", world=world, forms=forms, invitations=invitations,
            sandbox_url=current_app.config["MAX_API_URL"])
        return forms, world, response
    if world is None:
        flash(_("The Max sandbox does not answer at %(url)s.",
                url=current_app.config["MAX_API_URL"]), "error")
        return forms, world, redirect(url_for("training.index"))
    return forms, world, (render_template(
        "training/index.html", world=world, forms=forms, invitations=invitations,
        sandbox_url=current_app.config["MAX_API_URL"]), 400)


def _refused(exc: Exception) -> None:
    if isinstance(exc, SandboxControlError):
        flash(_("The Max sandbox refused the action (code %(status)d).", status=exc.status),
              "error")
    else:
        flash(_("The Max sandbox does not answer at %(url)s.",
                url=current_app.config["MAX_API_URL"]), "error")


def _done():
    return redirect(url_for("training.index"))


@bp.get("/")
@login_required
@roles_required("admin", "coordinator")
def index():
    return _page()[2]


@bp.post("/chats")
@login_required
@roles_required("admin", "coordinator")
def create_chat():
    forms, world, response = _page("chat")
    if response is not None:
        return response
    form = forms["chat"]
    try:
        with training.control() as sandbox:
            chat = sandbox.create_chat(form.title.data.strip(), form.owner.data)
    except Unreachable as exc:
        _refused(exc)
        return _done()
    flash(_("Chat «%(title)s» created in the sandbox; %(owner)s owns it.",
            title=chat["title"], owner=world.user_name(form.owner.data)), "success")
    return _done()


@bp.post("/bot")
@login_required
@roles_required("admin", "coordinator")
def bot():
    forms, world, response = _page("bot")
    if response is not None:
        return response
    form = forms["bot"]
    chat_id, rights = form.chat.data, list(form.rights.data or ())
    chat = next((c for c in world.chats if c["chat_id"] == chat_id), {})
    title, active = chat.get("title", chat_id), chat.get("bot_status") == "active"
    if form.add.data and active:
        form.chat.errors = [_("The bot is already in this chat: change its rights instead.")]
    elif (form.change.data or form.remove.data) and not active:
        form.chat.errors = [_("The bot is not in this chat: add it first.")]
    if form.chat.errors:
        return _page_with_errors(forms, world)
    try:
        with training.control() as sandbox:
            if form.remove.data:
                sandbox.remove_bot(chat_id)
                flash(_("The bot was removed from «%(title)s».", title=title), "success")
            elif form.change.data:
                sandbox.set_bot_rights(chat_id, rights, is_admin=form.is_admin.data)
                flash(_("The bot's rights in «%(title)s» changed. Max sends no event for "
                        "this: check the chat again on its page in «Чаты Max».", title=title),
                      "success")
            else:
                sandbox.add_bot(chat_id, rights, is_admin=form.is_admin.data)
                flash(_("The bot was added to «%(title)s».", title=title), "success")
    except Unreachable as exc:
        _refused(exc)
    return _done()


def _page_with_errors(forms, world):
    return render_template("training/index.html", world=world, forms=forms,
                           invitations=training.invitations(current_user),
                           sandbox_url=current_app.config["MAX_API_URL"]), 400


@bp.post("/members")
@login_required
@roles_required("admin", "coordinator")
def add_member():
    forms, world, response = _page("member")
    if response is not None:
        return response
    form = forms["member"]
    chat = next(c for c in world.chats if c["chat_id"] == form.chat.data)
    if any(m["user_id"] == form.person.data for m in chat["members"]):
        form.person.errors = [_("This person is already in the chat.")]
        return _page_with_errors(forms, world)
    try:
        with training.control() as sandbox:
            sandbox.join(form.chat.data, form.person.data)
    except Unreachable as exc:
        _refused(exc)
        return _done()
    flash(_("%(person)s joined «%(title)s».", person=world.user_name(form.person.data),
            title=chat.get("title") or chat["chat_id"]), "success")
    return _done()


@bp.post("/people")
@login_required
@roles_required("admin", "coordinator")
def create_person():
    forms, world, response = _page("person")
    if response is not None:
        return response
    form = forms["person"]
    try:
        with training.control() as sandbox:
            user = sandbox.create_user(form.first_name.data.strip(),
                                       (form.last_name.data or "").strip() or None,
                                       allow_add=bool(form.allow_add.data))
    except Unreachable as exc:
        _refused(exc)
        return _done()
    flash(_("%(person)s now has a Max account in the sandbox.",
            person=training.full_name(user)), "success")
    return _done()


@bp.post("/start")
@login_required
@roles_required("admin", "coordinator")
def press_start():
    forms, world, response = _page("start")
    if response is not None:
        return response
    form = forms["start"]
    invitation = None
    if form.invitation.data:
        found = training.invitations(current_user, int(form.invitation.data))
        if not found:
            form.invitation.errors = [_("This invitation is no longer waiting for Start.")]
            return _page_with_errors(forms, world)
        invitation = found[0]
    if invitation is not None and form.link.data:
        form.link.errors = [_("Choose an invitation or paste a link, not both.")]
        return _page_with_errors(forms, world)
    try:
        with training.control() as sandbox:
            user_id = training.press_start(
                sandbox, int(form.person.data) if form.person.data else None, invitation,
                form.link.data or None)
            name = training.full_name(sandbox.get_user(user_id))
    except Unreachable as exc:
        _refused(exc)
        return _done()
    if invitation is not None and name == invitation.name:
        flash(_("%(employee)s pressed Start on their invitation; the app links them as soon "
                "as Max reports it.", employee=name), "success")
    elif invitation is not None:
        flash(_("%(person)s pressed Start with the invitation of %(employee)s; the app links "
                "them as soon as Max reports it.", person=name, employee=invitation.name),
              "success")
    else:
        flash(_("%(person)s pressed Start.", person=name), "success")
    return _done()
