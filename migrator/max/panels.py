"""The "Max chat" panel on the group page: the mapping and a link/unlink form."""

from __future__ import annotations

from flask import session
from flask_login import current_user

from migrator.auth.service import can_write
from migrator.core.panels import register_panel
from migrator.db import get_session
from migrator.max import service
from migrator.max.forms import LinkChatForm
from migrator.max.models import MaxChat
from migrator.max.views import LINK_ERROR_KEY


def link_context(group) -> dict:
    chat = get_session().get(MaxChat, group.max_chat_id) if group.max_chat_id else None
    form = None
    writable = can_write()
    if writable and chat is None:
        form = LinkChatForm()
        form.chat.choices = [("", "—")] + [
            (str(c.id), f"{c.title or c.chat_id} ({c.chat_id})")
            for c in service.linkable_chats(current_user)
        ]
    return {
        "group": group,
        "chat": chat,
        "chat_visible": chat is not None and service.can_see_chat(chat, current_user),
        "form": form,
        "can_write": writable,
        "link_error": session.pop(service_error_key(), None),
    }


def service_error_key() -> str:
    return LINK_ERROR_KEY


register_panel("group", "max/_group_link.html", link_context, order=10)
