"""What each step kind does. Every executor is idempotent and commits as it goes.

Transactions are closed before every Max API call (on SQLite a transaction holds the
database write lock), and every intent is committed before the call that carries it out.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from migrator.audit.service import record
from migrator.db import get_session, utcnow
from migrator.engine.outcomes import Outcome, Postpone, StepFailed, cfg, renew_lease
from migrator.groups import attention
from migrator.groups.models import GroupMember, SourceGroup
from migrator.groups.service import coverage
from migrator.mail.service import valid_address
from migrator.max import service as max_service
from migrator.max.errors import MaxError, MaxForbidden
from migrator.max.models import MaxChat, MaxChatMember
from migrator.people.invites import issue_invitations
from migrator.people.models import Employee
from migrator.waves.models import Step
from migrator.waves.settings import get_setting

log = logging.getLogger("migrator.engine")

BATCH = 100  # ids per add call (Max limit)
PLATFORM_NAMES = {"whatsapp": "WhatsApp", "telegram": "Telegram", "viber": "Viber",
                  "vk": "VK", "other": "другом мессенджере"}


def run(step: Step, client_factory, rid: str) -> Outcome:
    session = get_session()
    group = session.get(SourceGroup, step.group_id)
    executor = {"invite": run_invite, "add_members": run_add_members,
                "announce": run_announce, "parallel_run": run_parallel,
                "cutover": run_cutover}[step.kind]
    try:
        return executor(step, group, client_factory, rid)
    except MaxForbidden as forbidden:
        # Max sends no update when the bot is demoted: every 403 re-checks the chat's rights,
        # and a chat now lacking some postpones the step (with attention) instead of failing
        chat = session.get(MaxChat, group.max_chat_id) if group and group.max_chat_id else None
        if chat is None:
            raise
        try:
            max_service.refresh_chat(chat.chat_id, client_factory())  # commits
            session.refresh(chat)
        except Exception:
            log.exception("re-checking the rights in chat %s after a 403 failed", chat.chat_id)
            raise forbidden from None
        if chat.preflight_ok:
            raise
        linked_chat(group)  # raises Postpone with the missing rights
        raise


def linked_chat(group: SourceGroup, client_factory=None) -> MaxChat:
    """The group's chat, ready for the bot to act in; otherwise postpone with attention.

    Rights that were missing are asked again (Max sends no update when an owner promotes
    the bot): within a minute, then backing off to every 10 minutes for 24 hours."""
    session = get_session()
    chat = session.get(MaxChat, group.max_chat_id) if group.max_chat_id else None
    if chat is None:
        raise Postpone("the group is not linked to a Max chat", 600,
                       attention=attention.reason(attention.NOT_LINKED))
    if (not chat.preflight_ok and client_factory is not None
            and max_service.rights_recheck_due(chat)):
        max_service.refresh_chat(chat.chat_id, client_factory())  # commits
        session.refresh(chat)
    if not chat.preflight_ok:
        missing = ", ".join(chat.missing_permissions) or chat.status
        delay = 600 if chat.status == "removed" else max_service.rights_recheck_interval(chat)
        raise Postpone(f"pre-flight failed: {missing}", min(delay, 600),
                       attention=attention.reason(attention.BOT_RIGHTS, missing=missing))
    return chat


# -- invite ------------------------------------------------------------------------------


def uninvited(group_id: int) -> tuple[int, int]:
    """``(to invite, unusable)``: members without a Max account nor an invitation, split by
    whether their e-mail address can be mailed at all (the invitation logic skips those)."""
    emails = get_session().scalars(
        select(Employee.email)
        .join(GroupMember, Employee.id == GroupMember.employee_id)
        .where(GroupMember.group_id == group_id, Employee.max_user_id.is_(None),
               GroupMember.invited_at.is_(None))
    ).all()
    unusable = sum(1 for e in emails if not valid_address(e))
    return len(emails) - unusable, unusable


def run_invite(step, group, client_factory, rid) -> Outcome:
    session = get_session()
    session.commit()
    stats = issue_invitations(group, reminder_every_days=get_setting("reminder_interval_days"),
                              max_reminders=get_setting("max_reminders"))
    session.commit()
    left, unusable = uninvited(group.id)
    info = {"stats": _plain(stats), "left": left}
    if left:
        return Outcome("due", again_in=60, info=info)
    if unusable:
        # Done as far as mail can go: say so on the group instead of re-running forever.
        info["invalid_email"] = unusable
        if not group.needs_attention:
            group.needs_attention = True
            group.attention_reason = attention.reason(attention.INVALID_EMAILS, count=unusable)
            group.updated_at = utcnow()
            session.add(group)
    return Outcome("succeeded", info=info)


def _plain(stats):
    if isinstance(stats, dict):
        return {k: v for k, v in stats.items() if isinstance(v, int | str | bool)}
    if hasattr(stats, "__dict__"):
        return {k: v for k, v in vars(stats).items() if isinstance(v, int | str | bool)}
    return str(stats)[:200]


# -- add_members -------------------------------------------------------------------------


def _to_add(group_id: int):
    """(GroupMember, max_user_id) of linked members still to add (retries bounded)."""
    max_tries = cfg("MEMBER_MAX_ATTEMPTS")
    return get_session().exec(
        select(GroupMember, Employee.max_user_id)
        .join(Employee, Employee.id == GroupMember.employee_id)
        .where(GroupMember.group_id == group_id, Employee.max_user_id.is_not(None),
               sa.or_(GroupMember.add_status == "pending",
                      sa.and_(GroupMember.add_status == "failed",
                              GroupMember.add_attempts < max_tries)))
        .order_by(Employee.max_user_id)
    ).all()


def _mark(member: GroupMember, status: str, error: str | None = None) -> None:
    member.add_status = status
    member.add_error = error
    if status in ("added", "already"):
        member.added_at = member.added_at or utcnow()
    get_session().add(member)


def run_add_members(step, group, client_factory, rid) -> Outcome:
    session = get_session()
    chat = linked_chat(group, client_factory)
    rows = _to_add(group.id)
    # Members the app already knows to be in the chat (updates, earlier syncs): no call.
    known = set(session.exec(
        select(MaxChatMember.max_user_id).where(MaxChatMember.chat_id == chat.id,
                                                MaxChatMember.is_present.is_(True))).all())
    todo = []
    for member, uid in rows:
        if uid in known:
            _mark(member, "already")
        else:
            todo.append((member, uid))
    in_flight = [m for m, _ in todo if m.add_status == "pending" and m.add_attempts > 0]
    session.commit()
    client = client_factory()
    if in_flight:
        # A previous run may have added them before it died: ask the chat, re-add no one.
        present = {m["user_id"] for m in client.iter_members(chat.chat_id)}
        rest = []
        for member, uid in todo:
            if uid in present:
                _mark(member, "added")
            else:
                rest.append((member, uid))
        todo = rest
        session.commit()
    added = failed = 0
    for i in range(0, len(todo), BATCH):
        batch = todo[i:i + BATCH]
        for member, _uid in batch:  # the intent, committed before the call
            member.add_attempts += 1
            session.add(member)
        renew_lease(step, rid)
        session.commit()
        result = client.add_members(chat.chat_id, [uid for _, uid in batch])
        for member, uid in batch:
            reason = result.reason_for(uid)
            if reason is None:
                _mark(member, "added")
                added += 1
            else:
                _mark(member, "failed", reason[:500])
                failed += 1
        record("members.add", object_type="group", object_id=group.id, org_id=group.org_id,
               summary={"chat_id": chat.chat_id, "requested": len(batch),
                        "failed": len(result.failed_user_ids)})
        session.commit()
    info = {"added": added, "failed": failed}
    retryable = [m for m, _ in _to_add(group.id) if m.add_status == "failed"]
    exhausted = session.scalar(
        select(sa.func.count()).select_from(GroupMember)
        .where(GroupMember.group_id == group.id, GroupMember.add_status == "failed",
               GroupMember.add_attempts >= cfg("MEMBER_MAX_ATTEMPTS")))
    if exhausted:
        group.needs_attention = True
        group.attention_reason = attention.reason(attention.ADD_FAILED, count=exhausted)
        session.add(group)
        info["gave_up"] = exhausted
    if retryable:
        return Outcome("due", again_in=cfg("MEMBER_RETRY_SECONDS"), info=info)
    return Outcome("succeeded", info=info)


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
        renew_lease(step, rid)
        session.add(step)
        session.commit()
        message = client.send_message(text, chat_id=chat.chat_id)
        step.message_id = message["body"]["mid"]
        session.add(step)
        record("chat.announce", object_type="group", object_id=group.id, org_id=group.org_id,
               summary={"chat_id": chat.chat_id, "message_id": step.message_id})
        session.commit()
    if step.pinned_at is None:
        client.pin_message(chat.chat_id, step.message_id)
        step.pinned_at = utcnow()
        session.add(step)
        record("chat.pin", object_type="group", object_id=group.id, org_id=group.org_id,
               summary={"chat_id": chat.chat_id, "message_id": step.message_id})
        session.commit()
    # Now the coordinator posts the move notice in the old group and confirms.
    return Outcome("waiting", info={"message_id": step.message_id})


# -- parallel_run ------------------------------------------------------------------------


def sync_members(group: SourceGroup, chat: MaxChat, client) -> dict:
    """The chat's member list → MaxChatMember, and people who joined by themselves."""
    session = get_session()
    session.commit()
    present = {m["user_id"] for m in client.iter_members(chat.chat_id)}
    rows = {r.max_user_id: r for r in session.exec(
        select(MaxChatMember).where(MaxChatMember.chat_id == chat.id)).all()}
    now = utcnow()
    for uid in present:
        row = rows.get(uid) or MaxChatMember(chat_id=chat.id, max_user_id=uid)
        if not row.is_present or uid not in rows:
            row.is_present = True
            row.updated_at = now
            session.add(row)
    for uid, row in rows.items():
        if uid not in present and row.is_present:
            row.is_present = False
            row.updated_at = now
            session.add(row)
    joined = 0
    for member, uid in session.exec(
        select(GroupMember, Employee.max_user_id)
        .join(Employee, Employee.id == GroupMember.employee_id)
        .where(GroupMember.group_id == group.id, Employee.max_user_id.is_not(None),
               GroupMember.add_status.not_in(("added", "already")))
    ).all():
        if uid in present:
            _mark(member, "already")
            joined += 1
    session.commit()
    return {"in_chat": len(present), "joined_by_themselves": joined}


def run_parallel(step, group, client_factory, rid) -> Outcome:
    chat = linked_chat(group, client_factory)
    info = sync_members(group, chat, client_factory())
    return Outcome("due", again_in=cfg("PARALLEL_SYNC_SECONDS"), info=info)


# -- cutover -----------------------------------------------------------------------------


def cutover_blocker(step: Step, group: SourceGroup) -> str | None:
    """Why the cutover cannot wait for confirmation yet (None: it can)."""
    announce = get_session().exec(
        select(Step).where(Step.group_id == group.id, Step.kind == "announce")).first()
    if announce is not None and announce.status not in ("succeeded", "skipped"):
        return "the announcement is not confirmed yet"
    if step.override_at is not None:
        return None
    in_chat, total = coverage(group)
    threshold = get_setting("coverage_threshold")
    if total == 0 or in_chat * 100 < threshold * total:
        pct = round(100 * in_chat / total) if total else 0
        return f"coverage {pct}% ({in_chat}/{total}) is below {threshold}%"
    return None


def run_cutover(step, group, client_factory, rid) -> Outcome:
    blocker = cutover_blocker(step, group)
    if blocker:
        raise Postpone(blocker, cfg("CUTOVER_RECHECK_SECONDS"))
    # The coordinator now closes the old group and confirms.
    return Outcome("waiting", info={"override": step.override_at is not None})
