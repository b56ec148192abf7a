"""Taking in Max updates: store each once, apply it idempotently and order-tolerantly.

The same function serves the webhook, the long-polling loop and ``max process-pending``.
Max retries deliveries for hours and may reorder them, so every handler compares the
update's ``timestamp`` (Unix ms) with what was already applied:

* the bot's membership of a chat (``bot_added``/``bot_removed``) follows the newest such
  event (``MaxChat.last_event_ts``); on a tie the removal wins, whatever the arrival order;
  who added the bot and when, and when it was removed, come from the newest event of each
  kind, so a late, stale ``bot_added`` still fills in its details without changing status;
* a title follows the newest ``chat_title_changed`` stored for the chat;
* a person's presence in a chat follows the newest ``user_added``/``user_removed`` for
  that pair (``MaxChatMember.last_event_ts``).

Max API calls (title and rights of a new chat) are never made here: a chat that needs them
keeps ``checked_at`` empty and is refreshed after the commit (:func:`after_commit`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import import_module
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale, gettext
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from migrator.attention.service import (
    clear_group,
    flag_group,
    resolve,
    sync_chat_link,
    sync_unaddable,
)
from migrator.audit.service import Actor, acting_as, record
from migrator.db import get_session, utcnow
from migrator.groups import states
from migrator.groups.attention import BOT_REMOVED, MEMBER_UNADDABLE
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max import breaker
from migrator.max.models import MaxChat, MaxChatMember, MaxDialogUser, MaxUpdate
from migrator.max.service import get_client, refresh_chat, refresh_pending
from migrator.people.models import Employee

log = logging.getLogger("migrator.max")

MAX_ACTOR = Actor("max", "updates", "Max updates")


class Deferred(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The update cannot be handled yet (a module it needs is absent); keep it pending."""


@dataclass
class Intake:
    """What happened to one delivered update."""

    row: MaxUpdate | None  # None: an update not kept (a group chat's message)
    duplicate: bool = False
    refresh_chat_id: int | None = None  # Max chat id to re-check once committed


def canonical_json(update: dict) -> str:
    return json.dumps(update, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dedup_key(update: dict) -> str:
    """SHA-256 of the update's canonical JSON: the same delivery twice has the same key."""
    return hashlib.sha256(canonical_json(update).encode("utf-8")).hexdigest()


INT64 = 2**63 - 1


def _int(value) -> int | None:
    try:
        n = int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError, OverflowError):
        return None
    return n if n is None or -INT64 <= n <= INT64 else None


def number_problem(value, path: str = "update") -> str | None:
    """Why the update cannot be stored as it is: a number that is not finite (``Infinity``,
    ``NaN``, ``1e400``) or an integer beyond 64 bits, with where it is; ``None`` if fine."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{path}: the number is not finite"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64:
        return f"{path}: the integer is out of range"
    else:
        return None
    for key, item in items:
        problem = number_problem(item, f"{path}.{key}")
        if problem:
            return problem
    return None


def _user(update: dict) -> dict:
    user = update.get("user")
    return user if isinstance(user, dict) else {}


def _user_name(user: dict) -> str | None:
    name = user.get("name") or " ".join(
        p for p in (user.get("first_name"), user.get("last_name")) if p)
    return (name or None) and str(name)[:300]


def _ts_dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts / 1000, UTC)


# --- intake --------------------------------------------------------------------------


def intake(update: dict) -> Intake:
    """Store ``update`` once and apply it, in the caller's transaction (not committed).

    A repeat (same dedup key) is reported as duplicate and changes nothing. A failure of
    the handler is caught: the row keeps the error and no ``processed_at``, so it is retried
    later, and the caller can still answer 200.
    """
    session = get_session()
    if update.get("update_type") == "message_created" and not is_dialog_message(update):
        # group chat traffic: not ours to keep (only messages written to the bot are)
        return Intake(None, duplicate=True)
    key = dedup_key(update)
    existing = session.exec(select(MaxUpdate).where(MaxUpdate.dedup_key == key)).first()
    if existing is not None:
        return Intake(existing, duplicate=True)
    problem = number_problem(update)
    if problem:
        return _reject(update, key, problem[:900])
    message = update.get("message") if isinstance(update.get("message"), dict) else {}
    recipient = message.get("recipient") if isinstance(message.get("recipient"), dict) else {}
    row = MaxUpdate(
        dedup_key=key,
        update_type=str(update.get("update_type"))[:64],
        chat_id=_int(update.get("chat_id")) or _int(recipient.get("chat_id")),
        max_user_id=_int(_user(update).get("user_id")),
        timestamp=_int(update.get("timestamp")) or 0,
        payload=canonical_json(update),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # the same update inserted concurrently
        existing = session.exec(select(MaxUpdate).where(MaxUpdate.dedup_key == key)).first()
        return Intake(existing or row, duplicate=True)
    refresh = process(row, update)
    _record_received(row)
    return Intake(row, refresh_chat_id=refresh)


def _reject(update: dict, key: str, reason: str) -> Intake:
    """Store an update that cannot be applied as rejected (never retried) and audit it; the
    webhook still answers 200, so Max does not retry it for hours."""
    session = get_session()
    row = MaxUpdate(dedup_key=key, update_type=str(update.get("update_type"))[:64],
                    payload=canonical_json(update), processed_at=utcnow(),
                    error=f"rejected: {reason}")
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = session.exec(select(MaxUpdate).where(MaxUpdate.dedup_key == key)).first()
        return Intake(existing or row, duplicate=True)
    record("max.update_rejected", object_type="max_update", object_id=row.id, actor=MAX_ACTOR,
           summary={"update_type": row.update_type, "reason": reason})
    log.warning("Max update %s rejected: %s", row.id, reason)
    return Intake(row)


def _record_received(row: MaxUpdate) -> None:
    """One ``max.update`` audit event per update taken in (a repeat never gets here)."""
    org_id = None
    if row.chat_id is not None:
        org_id = get_session().scalar(
            sa.select(MaxChat.org_id).where(MaxChat.chat_id == row.chat_id))
    record("max.update", object_type="max_update", object_id=row.id, org_id=org_id,
           actor=MAX_ACTOR,
           summary={"update_type": row.update_type, "chat_id": row.chat_id,
                    "max_user_id": row.max_user_id, "timestamp": row.timestamp,
                    "applied": row.processed_at is not None})


def process(row: MaxUpdate, update: dict | None = None) -> int | None:
    """Apply a stored update (in a savepoint); returns a Max chat id to re-check, if any."""
    session = get_session()
    update = update if update is not None else json.loads(row.payload)
    handler = HANDLERS.get(row.update_type, _ignore)
    try:
        with session.begin_nested(), acting_as(MAX_ACTOR):
            refresh = handler(update, row)
    except Deferred as exc:
        row.error = str(exc)[:1000]
        session.add(row)
        log.info("update %s (%s) deferred: %s", row.id, row.update_type, exc)
        return None
    except Exception as exc:  # a poison update must not block the intake
        log.exception("update %s (%s) failed", row.id, row.update_type)
        row.error = f"{type(exc).__name__}: {exc}"[:1000]
        session.add(row)
        return None
    row.processed_at = utcnow()
    row.error = None
    session.add(row)
    return refresh


def process_pending(limit: int = 500) -> tuple[int, int]:
    """Retry stored updates without ``processed_at`` (oldest first), committing each.

    Returns ``(processed, still pending)``.
    """
    session = get_session()
    ids = list(session.exec(select(MaxUpdate.id).where(MaxUpdate.processed_at.is_(None))
                            .order_by(MaxUpdate.timestamp, MaxUpdate.id).limit(limit)).all())
    done = 0
    for update_id in ids:
        row = session.get(MaxUpdate, update_id)
        if row is None or row.processed_at is not None:
            continue
        process(row)
        session.commit()
        done += row.processed_at is not None
    return done, len(ids) - done


# --- handlers ------------------------------------------------------------------------


def _ignore(update: dict, row: MaxUpdate) -> None:
    return None


def _locked_chat(chat_id: int) -> MaxChat | None:
    # FOR UPDATE: concurrent deliveries for one chat apply one after the other (PostgreSQL;
    # SQLite writers are serialised anyway), so the newest-event-wins checks hold.
    return get_session().exec(
        select(MaxChat).where(MaxChat.chat_id == chat_id).with_for_update()).first()


def _chat(chat_id: int | None) -> MaxChat:
    """The chat row for a Max chat id, locked; created (discovered) if unknown."""
    if chat_id is None:
        raise ValueError("the update names no chat_id")
    session = get_session()
    chat = _locked_chat(chat_id)
    if chat is None:
        chat = MaxChat(chat_id=chat_id, status="discovered", last_event_ts=0)
        try:
            with session.begin_nested():
                session.add(chat)
        except IntegrityError:  # created by a concurrent delivery meanwhile
            chat = _locked_chat(chat_id)
    return chat


def _linked_groups(chat: MaxChat) -> list[SourceGroup]:
    return list(get_session().exec(
        select(SourceGroup).where(SourceGroup.max_chat_id == chat.id)).all())


def _membership_is_newer(chat: MaxChat, ts: int, removal: bool) -> bool:
    return ts > chat.last_event_ts or (removal and ts == chat.last_event_ts)


def on_bot_added(update: dict, row: MaxUpdate) -> int | None:
    session = get_session()
    chat = _chat(row.chat_id)
    ts = row.timestamp
    user = _user(update)
    if chat.added_at is None or _ts_dt(ts) >= chat.added_at:
        chat.added_at = _ts_dt(ts)
        chat.added_by_max_user_id = _int(user.get("user_id"))
        chat.added_by_name = _user_name(user)
        if chat.org_id is None and chat.added_by_max_user_id is not None:
            # one person may have several records (the first one's organisation is taken)
            emp = session.exec(select(Employee).where(
                Employee.max_user_id == chat.added_by_max_user_id)
                .order_by(Employee.id)).first()
            if emp is not None:
                chat.org_id = emp.org_id
    if not _membership_is_newer(chat, ts, removal=False):
        session.add(chat)
        return None
    was = chat.status if chat.last_event_ts else None
    groups = _linked_groups(chat)
    chat.status = "linked" if groups else "discovered"
    chat.last_event_ts = ts
    chat.checked_at = None  # the rights may differ after a (re-)add: fetch them again
    session.add(chat)
    for group in groups:
        clear_group(group, BOT_REMOVED)
    record("max.chat_discovered", object_type="max_chat", object_id=chat.chat_id,
           org_id=chat.org_id,
           summary={"added_by_max_user_id": chat.added_by_max_user_id,
                    "added_by": chat.added_by_name, "status": chat.status,
                    "re_added": was == "removed"})
    return chat.chat_id


def on_bot_removed(update: dict, row: MaxUpdate) -> None:
    session = get_session()
    chat = _chat(row.chat_id)
    ts = row.timestamp
    if chat.removed_at is None or _ts_dt(ts) >= chat.removed_at:
        chat.removed_at = _ts_dt(ts)
    if not _membership_is_newer(chat, ts, removal=True):
        session.add(chat)
        return None
    chat.status = "removed"
    chat.last_event_ts = ts
    session.add(chat)
    groups = _linked_groups(chat)
    for group in groups:
        flag_group(group, BOT_REMOVED)
    record("max.chat_removed", object_type="max_chat", object_id=chat.chat_id,
           org_id=chat.org_id,
           summary={"by_max_user_id": _int(_user(update).get("user_id")),
                    "groups_flagged": [g.key for g in groups]})
    return None


def on_title_changed(update: dict, row: MaxUpdate) -> None:
    session = get_session()
    chat = _chat(row.chat_id)
    newer = session.exec(select(MaxUpdate.id).where(
        MaxUpdate.chat_id == row.chat_id, MaxUpdate.update_type == "chat_title_changed",
        MaxUpdate.timestamp > row.timestamp, MaxUpdate.processed_at.is_not(None))).first()
    title = update.get("title")
    if newer is None and isinstance(title, str) and title:
        chat.title = title[:500]
        session.add(chat)
    return None


def _on_member(update: dict, row: MaxUpdate, present: bool) -> None:
    session = get_session()
    user_id = _int(_user(update).get("user_id"))
    if user_id is None:
        raise ValueError("the update names no user")
    chat = _chat(row.chat_id)
    member = session.get(MaxChatMember, (chat.id, user_id))  # serialised by the chat lock
    if member is None:
        member = MaxChatMember(chat_id=chat.id, max_user_id=user_id, is_present=present,
                               last_event_ts=row.timestamp)
    elif row.timestamp > member.last_event_ts or (
            not present and row.timestamp == member.last_event_ts):
        member.is_present = present
        member.last_event_ts = row.timestamp
        member.updated_at = utcnow()
    else:
        return None  # an older event than the one already applied: it changes nothing
    session.add(member)
    _memberships_follow(chat, user_id, present)
    return None


def _memberships_follow(chat: MaxChat, user_id: int, present: bool) -> None:
    """The memberships of this person in the groups linked to the chat follow the event:
    in the chat (our add call landed, or they joined), or out of it (left, removed)."""
    session = get_session()
    rows = session.exec(
        select(GroupMember)
        .join(Employee, Employee.id == GroupMember.employee_id)
        .join(SourceGroup, SourceGroup.id == GroupMember.group_id)
        .where(SourceGroup.max_chat_id == chat.id, Employee.max_user_id == user_id)).all()
    for membership in rows:
        if present and membership.state not in states.IN_CHAT:
            was = membership.state
            states.move(membership, states.ADDED if was == states.ADDING else states.JOINED)
            if was in states.STUCK:  # refused for good (sent the chat's link, maybe)
                resolve("member", membership.employee_id, MEMBER_UNADDABLE,
                        group_id=membership.group_id)
                sync_unaddable(session.get(SourceGroup, membership.group_id))
                sync_chat_link(chat)
        elif not present and membership.state in states.IN_CHAT:
            states.move(membership, states.LEFT)


def on_user_added(update: dict, row: MaxUpdate) -> None:
    return _on_member(update, row, True)


def on_user_removed(update: dict, row: MaxUpdate) -> None:
    return _on_member(update, row, False)


def _dialog_user(max_user_id: int) -> MaxDialogUser:
    session = get_session()
    person = session.get(MaxDialogUser, max_user_id)
    if person is None:
        person = MaxDialogUser(max_user_id=max_user_id)
        session.add(person)
    return person


def bot_stopped(max_user_id: int) -> bool:
    """Whether this Max user stopped the bot (then no bot message goes to them)."""
    person = get_session().get(MaxDialogUser, max_user_id)
    return person is not None and person.stopped


def stopped_among(max_user_ids: set[int]) -> set[int]:
    """Those of these Max users who stopped the bot, in one query."""
    if not max_user_ids:
        return set()
    return set(get_session().scalars(
        sa.select(MaxDialogUser.max_user_id).where(
            MaxDialogUser.max_user_id.in_(max_user_ids),
            MaxDialogUser.stopped_ts > MaxDialogUser.started_ts)))


def on_bot_stopped(update: dict, row: MaxUpdate) -> None:
    """The person stopped the bot: no more bot messages go to them (until they Start)."""
    user_id = _int(_user(update).get("user_id"))
    if user_id is None:
        raise ValueError("the update names no user")
    person = _dialog_user(user_id)
    person.stopped_ts = max(person.stopped_ts, row.timestamp)
    person.updated_at = utcnow()
    get_session().add(person)
    return None


def is_dialog_message(update: dict) -> bool:
    """A ``message_created`` written to the bot in a dialog (not in a group chat)."""
    message = update.get("message") if isinstance(update.get("message"), dict) else {}
    recipient = message.get("recipient") if isinstance(message.get("recipient"), dict) else {}
    sender = message.get("sender") if isinstance(message.get("sender"), dict) else {}
    if sender.get("is_bot"):
        return False
    return recipient.get("chat_type") == "dialog" or recipient.get("user_id") is not None


def on_message_created(update: dict, row: MaxUpdate) -> None:
    """Someone wrote to the bot: a short help answer, at most once a day per person."""
    if not is_dialog_message(update):
        return None
    sender = update["message"].get("sender") or {}
    user_id = _int(sender.get("user_id"))
    if user_id is None:
        return None
    person = _dialog_user(user_id)
    if person.stopped:
        return None
    try:
        invites = import_module("migrator.people.invites")
        queue = invites.queue_bot_message
    except (ImportError, AttributeError) as exc:
        raise Deferred("the bot outbox is not available yet") from exc
    day = _ts_dt(row.timestamp or 0).astimezone(ZoneInfo(current_app.config["MIGRATOR_TZ"]))
    with force_locale("ru"):
        text = gettext(
            "This is the Migrator bot: it moves your department's working chats to Max and "
            "adds you to them. It does not answer messages. With questions, please contact "
            "the migration coordinator of your organisation.")
    queue(f"bothelp:{user_id}:{day:%Y-%m-%d}", user_id, text)
    person.help_sent_at = utcnow()
    person.updated_at = person.help_sent_at
    get_session().add(person)
    return None


def on_bot_started(update: dict, row: MaxUpdate) -> None:
    """Hand the deep-link payload to the invitation logic (``migrator.people.invites``)."""
    started = _int(_user(update).get("user_id"))
    if started is not None:
        person = _dialog_user(started)
        person.started_ts = max(person.started_ts, row.timestamp)
        person.updated_at = utcnow()
        get_session().add(person)
    try:
        invites = import_module("migrator.people.invites")
        handle = invites.handle_bot_started
    except (ImportError, AttributeError) as exc:
        raise Deferred("the invitation module is not available yet") from exc
    user = _user(update)
    user_id = _int(user.get("user_id"))
    if user_id is None:
        raise ValueError("the update names no user")
    payload = update.get("payload")
    kwargs = {}
    if "update_key" in inspect.signature(handle).parameters:
        kwargs["update_key"] = row.dedup_key  # keys the bot's reply to this update
    outcome = handle(payload if isinstance(payload, str) else "", user_id, _user_name(user),
                     **kwargs)
    log.info("bot_started from Max user %s: %s", user_id, outcome)
    return None


HANDLERS = {
    "bot_added": on_bot_added,
    "bot_removed": on_bot_removed,
    "chat_title_changed": on_title_changed,
    "user_added": on_user_added,
    "user_removed": on_user_removed,
    "bot_started": on_bot_started,
    "bot_stopped": on_bot_stopped,
    "message_created": on_message_created,
}


# --- after the commit ----------------------------------------------------------------


def after_commit(result: Intake, *, timeout: float = 3.0) -> None:
    """Fetch a newly added chat's title and rights now, briefly; on failure the chat stays
    pending (``checked_at`` empty) for ``max refresh``/``max process-pending``/the UI."""
    if result.refresh_chat_id is None:
        return
    if not current_app.config.get("MAX_BOT_TOKEN"):
        return
    try:
        with get_client(timeout=timeout, max_retries=0) as client:
            refresh_chat(result.refresh_chat_id, client)
    except Exception:  # the update is safely stored; the refresh is retried later
        get_session().rollback()
        log.warning("chat %s: immediate re-check failed; it stays pending",
                    result.refresh_chat_id, exc_info=True)


def pending_count() -> int:
    return get_session().scalar(sa.select(sa.func.count()).select_from(MaxUpdate)
                                .where(MaxUpdate.processed_at.is_(None))) or 0


def catch_up(limit: int = 500) -> tuple[int, int, int]:
    """Periodic job body (app context needed): retry pending updates, then fetch the title
    and rights of chats still unchecked. Returns ``(processed, still pending, refreshed)``.
    """
    with acting_as(MAX_ACTOR):
        done, left = process_pending(limit)
        refreshed = 0
        if current_app.config.get("MAX_BOT_TOKEN") and breaker.tripped_at() is None:
            with get_client() as client:
                refreshed = refresh_pending(client, limit)
    return done, left, refreshed
