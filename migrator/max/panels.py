"""The "Max chat" panel on the group page: the mapping, a link form with a server-side
search over the chats the group may be linked to, and the unlink button."""

from __future__ import annotations

from flask import request, session
from flask_login import current_user

from migrator.auth.service import can_write
from migrator.core.panels import register_panel
from migrator.db import get_session
from migrator.max import service
from migrator.max.forms import LinkChatForm
from migrator.max.models import MaxChat
from migrator.max.views import LINK_ERROR_KEY, rights_problem

PICKER_LIMIT = 50  # chats offered at once; the search narrows them down


def link_context(group) -> dict:
    chat = get_session().get(MaxChat, group.max_chat_id) if group.max_chat_id else None
    form = None
    writable = can_write()
    text = request.args.get("chat_q", "").strip()[:200]
    more = False
    if writable and chat is None:
        form = LinkChatForm()
        found = service.chats_for_group(group, current_user, text, limit=PICKER_LIMIT + 1)
        more = len(found) > PICKER_LIMIT
        choices = [("", "—")]
        for c in found[:PICKER_LIMIT]:
            label = f"{c.title or c.chat_id} ({c.chat_id})"
            problem = rights_problem(c)
            choices.append((str(c.id), f"{label} — {problem}" if problem else label))
        form.chat.choices = choices
    return {
        "group": group,
        "chat": chat,
        "chat_visible": chat is not None and service.can_see_chat(chat, current_user),
        "rights_problem": rights_problem(chat) if chat is not None else None,
        "form": form,
        "chat_q": text,
        "more_chats": more,
        "can_write": writable,
        "link_error": session.pop(service_error_key(), None),
    }


def service_error_key() -> str:
    return LINK_ERROR_KEY


register_panel("group", "max/_group_link.html", link_context, order=10)
