"""The fallback for people Max will not add: the chat's join link, sent to them.

When a member becomes ``unaddable`` (Max refused them for good, usually their privacy
settings), the engine calls :func:`offer_links`. Each such person gets the chat's join
link (``Chat.link`` of ``GET /chats/{chatId}``, stored as ``MaxChat.link``) by bot
message and by e-mail - by e-mail only if they stopped the bot - and moves to
``invited_by_link``. Both messages go through the outboxes, keyed once per person and chat,
in the transaction of that state change. When ``user_added`` then shows them in the chat
they become ``joined``, brought in by the tool (:func:`migrator.groups.states.move`).

A chat without a link keeps them ``unaddable`` and raises the chat's «no join link» item for
the coordinator (:func:`migrator.attention.service.sync_chat_link`); the next check of the
chat that finds a link resolves it and sends the link to everyone waiting
(:data:`migrator.max.service.chat_link_known`).
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from migrator.attention.service import sync_chat_link
from migrator.audit.service import record
from migrator.db import get_session, utcnow
from migrator.groups import states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.mail.service import queue_email, valid_address
from migrator.mail.templates import render_email
from migrator.max import service as max_service
from migrator.max.models import MaxChat
from migrator.max.updates import bot_stopped
from migrator.org.models import Organisation
from migrator.people.invites import queue_bot_message
from migrator.people.models import Employee

log = logging.getLogger("migrator.engine")

BOT_TEXT = (
    "Здравствуйте{name}! Max не позволил боту добавить вас в рабочий чат «{title}» "
    "(обычно так бывает из-за настроек приватности). Вступите в чат сами по ссылке:\n"
    "{link}\n\n"
    "Официальная переписка по-прежнему ведётся по электронной почте и в СЭД."
)


def offer_links(chat: MaxChat, members: list[GroupMember], client) -> int:
    """People who just became ``unaddable`` in ``chat``: send them its join link, or ask the
    coordinator for one. Asks Max for the chat (committing first) when no link is stored.
    Writes in the caller's transaction otherwise; returns how many memberships were sent it.
    """
    if not members:
        return 0
    session = get_session()
    if not chat.link and client is not None:
        # the owner may have created a link since the last check; a link found there is
        # sent to everyone waiting at once (the refresh's chat_link_known)
        max_service.refresh_chat(chat.chat_id, client)  # commits
        session.refresh(chat)
    sent = offer_waiting(chat) if chat.link else 0
    sync_chat_link(chat)
    return sent


def _name_part(full_name: str | None) -> str:
    words = (full_name or "").split()
    if len(words) >= 3:
        return f", {words[1]} {words[2]}"
    return f", {' '.join(words)}" if words else ""


def _send(chat: MaxChat, emp: Employee, group: SourceGroup, now: datetime) -> list[str]:
    """Queue the link to one person (once per chat); the channels it goes by."""
    title = chat.title or group.name
    channels = []
    if emp.max_user_id is not None and not bot_stopped(emp.max_user_id):
        queue_bot_message(f"joinlink:{chat.chat_id}:{emp.max_user_id}", emp.max_user_id,
                          BOT_TEXT.format(name=_name_part(emp.full_name), title=title,
                                          link=chat.link), now=now)
        channels.append("bot")
    if valid_address(emp.email):
        org = get_session().get(Organisation, emp.org_id)
        subject, text, html = render_email(
            "join_link", full_name=emp.full_name, chat_title=title, link=chat.link,
            org_name=org.name if org else "", group_name=group.name)
        queue_email(f"joinlink:{chat.chat_id}:{emp.id}", emp.email, subject, text, html,
                    kind="join_link", org_id=group.org_id, now=now)
        channels.append("email")
    return channels


def offer_waiting(chat: MaxChat, now: datetime | None = None) -> int:
    """Send the chat's link to every ``unaddable`` member of its groups and mark them
    ``invited_by_link`` (not committed). Someone no message can reach (they stopped the bot
    and have no usable e-mail address) stays ``unaddable``. Returns how many moved."""
    if not chat.link:
        return 0
    session = get_session()
    now = now or utcnow()
    rows = session.execute(
        sa.select(GroupMember, Employee, SourceGroup)
        .join(Employee, Employee.id == GroupMember.employee_id)
        .join(SourceGroup, SourceGroup.id == GroupMember.group_id)
        .where(SourceGroup.max_chat_id == chat.id, GroupMember.state == states.UNADDABLE)
        .order_by(GroupMember.group_id, GroupMember.employee_id)).all()
    moved = 0
    for member, emp, group in rows:
        channels = _send(chat, emp, group, now)
        if not channels:
            log.warning("employee %s cannot be sent the link of chat %s: stopped the bot and "
                        "no usable e-mail", emp.id, chat.chat_id)
            continue
        states.move(member, states.INVITED_BY_LINK, now=now)
        record("member.join_link_sent", object_type="group", object_id=group.id,
               org_id=group.org_id,
               summary={"employee_id": emp.id, "chat_id": chat.chat_id, "channels": channels,
                        "reason": member.reason})
        moved += 1
    if moved:
        log.info("chat %s: join link sent to %d members Max would not add", chat.chat_id,
                 moved)
    return moved


def _on_link_known(chat: MaxChat, **_kw) -> None:
    offer_waiting(chat)


max_service.chat_link_known.connect(_on_link_known)
