"""The announcement: post the welcome and rules message once, pin it once."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import select

from migrator.audit.service import record
from migrator.db import get_session, utcnow
from migrator.engine import leases
from migrator.engine.kinds.base import PLATFORM_NAMES, linked_chat
from migrator.engine.models import Step
from migrator.engine.outcomes import Outcome, Postpone, StepFailed
from migrator.groups.models import SourceGroup
from migrator.max.errors import MaxError
from migrator.max.models import MaxChat
from migrator.waves.settings import get_setting

log = logging.getLogger("migrator.engine")


# -- announce ----------------------------------------------------------------------------


def announcement_text(group: SourceGroup) -> str:
    """The welcome and rules message; refuses to build one without the e-mail/СЭД footer."""
    footer = (get_setting("footer") or "").strip()
    if not footer:
        raise StepFailed("the announcement footer (e-mail and СЭД stay official) is not set")
    body = (get_setting("announce_text") or "").strip()
    try:
        body = body.format(group=group.name,
                           platform=PLATFORM_NAMES.get(group.platform, group.platform))
    except (KeyError, IndexError, ValueError):
        pass
    if len(body) + len(footer) + 2 > 4000:
        body = body[:4000 - len(footer) - 2]
    return f"{body}\n\n{footer}" if body else footer


PENDING = "pending:"  # message_id while posting: "pending:<chat's message count before>"


def _recover_announcement(client, chat: MaxChat, text: str, count_before: int,
                          since: datetime | None = None) -> str | None:
    """After a run died while posting: the message id if our announcement is in the chat,
    None if it is certainly not there (safe to post); StepFailed when nobody can tell."""
    pinned = client.get_pinned(chat.chat_id)
    if pinned and (pinned.get("body") or {}).get("text") == text:
        return pinned["body"]["mid"]
    try:  # GET /messages, only what was posted since the intent (a minute of clock slack)
        oldest = int(since.timestamp() * 1000) - 60_000 if since else None
        messages = client.get_messages(chat.chat_id, count=100, to=oldest)
        for m in messages:
            if (m.get("sender") or {}).get("is_bot") and (m.get("body") or {}).get("text") == text:
                return m["body"]["mid"]
        if len(messages) < 100:
            return None  # every message since the intent was seen: ours is not there
    except MaxError as exc:
        if exc.retryable:
            raise
    info = client.get_chat(chat.chat_id)
    if int(info.get("messages_count") or 0) > count_before:
        raise StepFailed("the announcement may already be in the chat (a run stopped while "
                         "posting it): check the Max chat, then retry or skip this step")
    return None


def _pinned_already(client, chat: MaxChat, message_id: str) -> bool:
    """Whether our announcement is the chat's pinned message (a pin whose answer was lost)."""
    pinned = client.get_pinned(chat.chat_id)
    return bool(pinned) and (pinned.get("body") or {}).get("mid") == message_id


def run_announce(step, group, client_factory, rid) -> Outcome:
    session = get_session()
    chat = linked_chat(group, client_factory)
    adding = session.exec(select(Step).where(Step.group_id == group.id,
                                             Step.kind == "add_members")).first()
    if (adding is not None and adding.status not in ("succeeded", "skipped")
            and adding.finished_at is None):
        raise Postpone("waiting for the first run of adding members", 120)
    text = announcement_text(group)
    client = client_factory()
    if step.message_id and step.message_id.startswith(PENDING):
        count_before = int(step.message_id[len(PENDING):] or 0)
        session.commit()
        step.message_id = _recover_announcement(client, chat, text, count_before,
                                                step.send_intent_at)
        if step.message_id:
            record("chat.announce_recovered", object_type="group", object_id=group.id,
                   org_id=group.org_id, summary={"message_id": step.message_id})
        session.add(step)
        session.commit()
    if step.message_id is None:
        session.commit()
        count = int(client.get_chat(chat.chat_id).get("messages_count") or 0)
        # The intent, committed before the call: a restart knows a post may be out there.
        step.message_id = f"{PENDING}{count}"
        step.send_intent_at = utcnow()
        leases.renew(step)  # a fresh lease for the call that follows
        session.add(step)
        session.commit()
        message = client.send_message(text, chat_id=chat.chat_id)
        step.message_id = message["body"]["mid"]
        session.add(step)
        record("chat.announce", object_type="group", object_id=group.id, org_id=group.org_id,
               summary={"chat_id": chat.chat_id, "message_id": step.message_id})
        session.commit()
    if step.pinned_at is None:
        # a pin whose answer was lost, or a run killed after it: read before pinning again
        if not _pinned_already(client, chat, step.message_id):
            client.pin_message(chat.chat_id, step.message_id)
        step.pinned_at = utcnow()
        session.add(step)
        record("chat.pin", object_type="group", object_id=group.id, org_id=group.org_id,
               summary={"chat_id": chat.chat_id, "message_id": step.message_id})
        session.commit()
    # Now the coordinator posts the move notice in the old group and confirms.
    return Outcome("waiting", info={"message_id": step.message_id})
