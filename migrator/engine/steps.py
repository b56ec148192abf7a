"""What each step kind does. Every executor is idempotent and commits as it goes.

Transactions are closed before every Max API call (on SQLite a transaction holds the
database write lock), and every intent is committed before the call that carries it out.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import select

from migrator.attention.service import clear_group, flag_group, raise_item, resolve, sync_unaddable
from migrator.audit.service import record
from migrator.db import get_session, utcnow
from migrator.engine import fallback
from migrator.engine.outcomes import Outcome, Postpone, StepFailed, cfg, renew_lease
from migrator.groups import attention, states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.groups.service import coverage
from migrator.mail.service import valid_address
from migrator.max import service as max_service
from migrator.max.errors import MaxError, MaxForbidden, MaxRateLimited, MaxSoftFailure
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
        flag_group(group, attention.INVALID_EMAILS, count=unusable)
    else:
        clear_group(group, attention.INVALID_EMAILS)
    return Outcome("succeeded", info=info)


def _plain(stats):
    if isinstance(stats, dict):
        return {k: v for k, v in stats.items() if isinstance(v, int | str | bool)}
    if hasattr(stats, "__dict__"):
        return {k: v for k, v in vars(stats).items() if isinstance(v, int | str | bool)}
    return str(stats)[:200]


# -- add_members -------------------------------------------------------------------------
#
# The step is *open* from its due time until cutover: every run adds each linked member
# whose own time has come (``GroupMember.next_attempt_at``), in calls of at most 100 ids
# per Max chat; one call serves every group linked to that chat. A member's failure only
# moves that member's own clock: it never holds back another member or the announcement.


def _backoff(attempts: int, base: float, cap: float) -> float:
    """Exponential back-off with ±20 % jitter (so retries of a batch spread out)."""
    delay = min(cap, base * (2 ** max(attempts - 1, 0)))
    return delay * random.uniform(0.8, 1.2)


def _chat_groups(chat: MaxChat) -> list[int]:
    """Groups linked to ``chat`` whose add step is open (due time passed, before cutover)."""
    session = get_session()
    closed = select(Step.group_id).where(Step.kind == "cutover",
                                         Step.status.in_(("succeeded", "skipped")))
    return list(session.exec(
        select(Step.group_id)
        .join(SourceGroup, SourceGroup.id == Step.group_id)
        .where(SourceGroup.max_chat_id == chat.id, Step.kind == "add_members",
               Step.status.in_(("due", "running", "succeeded")),
               Step.group_id.not_in(closed))).all())


def _due_members(group_ids: list[int], now: datetime, where) -> dict[int, list[GroupMember]]:
    """``{max_user_id: [memberships]}`` of members matching ``where`` whose time has come."""
    rows = get_session().exec(
        select(GroupMember, Employee.max_user_id)
        .join(Employee, Employee.id == GroupMember.employee_id)
        .where(GroupMember.group_id.in_(group_ids), Employee.max_user_id.is_not(None), where,
               sa.or_(GroupMember.next_attempt_at.is_(None),
                      GroupMember.next_attempt_at <= now))
        .order_by(Employee.max_user_id)).all()
    by_user: dict[int, list[GroupMember]] = {}
    for member, uid in rows:
        by_user.setdefault(uid, []).append(member)
    return by_user


def members_due(group_id: int, now: datetime | None = None) -> int:
    """How many members of the group the next run would try to add."""
    return sum(len(m) for m in _due_members(
        [group_id], now or utcnow(),
        GroupMember.state.in_((*states.TO_ADD, states.ADDING))).values())


def _recover_in_flight(chat: MaxChat, group_ids: list[int], client, now: datetime) -> None:
    """Members left ``adding`` by a run that died or got no answer: ask the chat once."""
    in_flight = _due_members(group_ids, now, GroupMember.state == states.ADDING)
    if not in_flight:
        return
    get_session().commit()
    present = {m["user_id"] for m in client.iter_members(chat.chat_id)}
    for uid, members in in_flight.items():
        for member in members:
            if uid in present:
                states.move(member, states.ADDED, now=now)
            else:  # the call never reached Max: due again at once
                states.move(member, states.RETRYING, reason=member.reason or "max.unavailable",
                            next_attempt_at=now, now=now)
    get_session().commit()


def _known_present(chat: MaxChat, by_user: dict[int, list[GroupMember]], now) -> None:
    """Members the app already knows to be in the chat (updates, syncs): no call."""
    known = set(get_session().exec(
        select(MaxChatMember.max_user_id).where(MaxChatMember.chat_id == chat.id,
                                                MaxChatMember.is_present.is_(True))).all())
    for uid in [u for u in by_user if u in known]:
        for member in by_user.pop(uid):
            states.move(member, states.JOINED, now=now)


def _apply_result(members: list[GroupMember], code: str | None, now: datetime,
                  newly_unaddable: list[GroupMember]) -> None:
    """One person's answer from Max, applied to each of their memberships."""
    for member in members:
        if code is None:
            states.move(member, states.ADDED, now=now)
        elif code in attention.PERMANENT_ADD_CODES:
            if member.attempts >= cfg("MEMBER_MAX_ATTEMPTS"):
                states.move(member, states.UNADDABLE, reason=code, now=now)
                newly_unaddable.append(member)
            else:
                delay = _backoff(member.attempts, cfg("MEMBER_RETRY_SECONDS"),
                                 cfg("MEMBER_RETRY_MAX_SECONDS"))
                states.move(member, states.RETRYING, reason=code, now=now,
                            next_attempt_at=now + timedelta(seconds=delay))
        else:
            _transient(member, code, now)


def _transient(member: GroupMember, code: str, now: datetime,
               at_least: float = 0) -> None:
    delay = max(at_least, _backoff(member.attempts, cfg("MEMBER_BACKOFF_SECONDS"),
                                   cfg("MEMBER_RETRY_MAX_SECONDS")))
    states.move(member, states.RETRYING, reason=code, now=now,
                next_attempt_at=now + timedelta(seconds=delay))


def run_add_members(step, group, client_factory, rid) -> Outcome:
    session = get_session()
    chat = linked_chat(group, client_factory)
    now = utcnow()
    group_ids = sorted(set(_chat_groups(chat)) | {group.id})
    # a Max account bound without a Start press through us (e.g. registered by an admin)
    states.move_where(states.LINKED, GroupMember.group_id.in_(group_ids),
                      GroupMember.state == states.NOT_LINKED,
                      GroupMember.employee_id.in_(select(Employee.id).where(
                          Employee.max_user_id.is_not(None))), now=now, next_attempt_at=now)
    client = client_factory()
    _recover_in_flight(chat, group_ids, client, now)
    by_user = _due_members(group_ids, now, GroupMember.state.in_(states.TO_ADD))
    _known_present(chat, by_user, now)
    session.commit()
    users = list(by_user)
    added = failed = 0
    newly_unaddable: list[GroupMember] = []
    for i in range(0, len(users), BATCH):
        batch = users[i:i + BATCH]
        now = utcnow()
        for uid in batch:  # the intent, committed before the call
            for member in by_user[uid]:
                member.attempts += 1
                states.move(member, states.ADDING, reason=member.reason, now=now)
        renew_lease(step, rid)
        session.commit()
        try:
            result = client.add_members(chat.chat_id, batch)
        except MaxError as exc:
            _batch_failed(exc, [m for uid in batch for m in by_user[uid]])
            session.commit()
            if not exc.retryable:
                raise  # 401, 403, 404: the chat or the token, not these members
            if isinstance(exc, MaxRateLimited):
                break  # the rest keep their turn; the step comes back when Max allows
            continue
        now = utcnow()
        for uid in batch:
            code = result.reason_for(uid)
            _apply_result(by_user[uid], code, now, newly_unaddable)
            added += code is None
            failed += code is not None
        record("members.add", object_type="group", object_id=group.id, org_id=group.org_id,
               summary={"chat_id": chat.chat_id, "requested": len(batch),
                        "failed": len(result.failed_user_ids),
                        "groups": [g for g in group_ids if g != group.id] or None})
        session.commit()
    for member in newly_unaddable:
        flag_member(member)
    fallback.offer_links(chat, newly_unaddable, client)  # the chat's join link, or ask for one
    sync_unaddable(group)
    session.commit()
    return _add_outcome(step, group, {"added": added, "failed": failed})


def _batch_failed(exc: MaxError, members: list[GroupMember]) -> None:
    """A whole add call failed: nobody in it is added, each waits on their own clock."""
    now = utcnow()
    for member in members:
        if not exc.retryable:  # refused as a whole (rights, token): not a member's failure
            member.attempts = max(member.attempts - 1, 0)
            states.move(member, states.RETRYING, reason=member.reason, now=now,
                        next_attempt_at=now)
        elif isinstance(exc, MaxRateLimited):
            member.attempts = max(member.attempts - 1, 0)
            _transient(member, "max.rate_limited", now, at_least=exc.retry_after or 1)
        elif isinstance(exc, MaxSoftFailure):
            _transient(member, "max.soft_failure", now)
        else:
            # No answer or a 5xx: Max may have added them. They stay ``adding`` and the
            # next run asks the chat before calling again (never a second add).
            delay = _backoff(member.attempts, cfg("MEMBER_BACKOFF_SECONDS"),
                             cfg("MEMBER_RETRY_MAX_SECONDS"))
            member.reason = "max.unavailable"
            member.next_attempt_at = now + timedelta(seconds=delay)
            get_session().add(member)
    record("members.add_failed", object_type="group",
           object_id=members[0].group_id if members else None,
           summary={"requested": len(members), "error": str(exc)[:200],
                    "retryable": exc.retryable})


def flag_member(member: GroupMember) -> None:
    """An attention item for a member Max will not add (resolved once they are in)."""
    group = get_session().get(SourceGroup, member.group_id)
    raise_item("member", member.employee_id, attention.MEMBER_UNADDABLE,
               org_id=group.org_id if group else None, group_id=member.group_id,
               reason=member.reason or "unknown")


def _add_outcome(step: Step, group: SourceGroup, info: dict) -> Outcome:
    """Due again when the earliest waiting member's time comes; else done (for now)."""
    session = get_session()
    step.finished_at = utcnow()  # a pass completed: the announcement need not wait
    waiting = (GroupMember.group_id == group.id,
               GroupMember.state.in_((*states.TO_ADD, states.ADDING)))
    linked = select(Employee.id).where(Employee.max_user_id.is_not(None))
    next_at = session.scalar(select(sa.func.min(sa.func.coalesce(
        GroupMember.next_attempt_at, utcnow()))).where(*waiting,
                                                       GroupMember.employee_id.in_(linked)))
    counts = dict(session.exec(
        select(GroupMember.state, sa.func.count()).where(GroupMember.group_id == group.id)
        .group_by(GroupMember.state)).all())
    info = {**info, "unaddable": counts.get(states.UNADDABLE, 0),
            "retrying": counts.get(states.RETRYING, 0) + counts.get(states.ADDING, 0)}
    if next_at is not None:
        again = max((next_at - utcnow()).total_seconds(), 0)
        return Outcome("due", again_in=again, info=info)
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
    joined = left = 0
    for member, uid in session.exec(
        select(GroupMember, Employee.max_user_id)
        .join(Employee, Employee.id == GroupMember.employee_id)
        .where(GroupMember.group_id == group.id, Employee.max_user_id.is_not(None))
    ).all():
        if uid in present and member.state not in states.IN_CHAT:
            was = member.state
            if was == states.ADDING:  # our call went through before a run died
                states.move(member, states.ADDED, now=now)
            else:
                states.move(member, states.JOINED, now=now)
                joined += 1
            if was in states.STUCK:
                resolve("member", member.employee_id, attention.MEMBER_UNADDABLE,
                        group_id=group.id)
        elif uid not in present and member.state in states.IN_CHAT:
            states.move(member, states.LEFT, now=now)
            left += 1
    sync_unaddable(group)
    session.commit()
    return {"in_chat": len(present), "joined_by_themselves": joined, "left": left}


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
