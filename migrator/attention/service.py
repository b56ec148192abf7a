"""Raise and resolve attention items; keep a group's ``needs_attention`` flag in step.

Writers call :func:`raise_item` when something goes wrong and :func:`resolve` when the
event that fixes it happens, so nothing stays flagged after it is fixed. Group-level items
also set ``SourceGroup.needs_attention``/``attention_reason`` (the newest open reason) so
lists can filter on one indexed column. Nothing here commits: items are written in the
transaction of the event that raised or resolved them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from migrator.attention.models import AttentionItem
from migrator.audit.service import current_actor, record
from migrator.db import get_session, utcnow
from migrator.groups import attention as reasons
from migrator.groups import states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.models import MaxChat


def _key(subject_type: str, subject_id: int, code: str, group_id: int | None) -> str:
    if subject_type == "member":
        return f"member:{group_id}:{subject_id}:{code}"
    return f"{subject_type}:{subject_id}:{code}"


def _who() -> str:
    actor = current_actor()
    return f"{actor.type}:{actor.label or actor.id or ''}"[:200]


def open_item(subject_type: str, subject_id: int, code: str,
              group_id: int | None = None) -> AttentionItem | None:
    return get_session().exec(select(AttentionItem).where(
        AttentionItem.open_key == _key(subject_type, subject_id, code, group_id))).first()


def raise_item(subject_type: str, subject_id: int, code: str, *, org_id: int | None = None,
               group_id: int | None = None, now: datetime | None = None,
               **params) -> AttentionItem:
    """The open item for this subject and reason: raised now, or the one already open
    (its parameters refreshed). Audited once, when raised."""
    reasons.reason(code)  # an unknown code is a programming error
    session = get_session()
    existing = open_item(subject_type, subject_id, code, group_id)
    text = json.dumps(params, ensure_ascii=False, sort_keys=True, default=str) if params else None
    if existing is not None:
        if existing.params != text:
            existing.params = text
            session.add(existing)
        return existing
    item = AttentionItem(subject_type=subject_type, subject_id=subject_id, code=code,
                         params=text, org_id=org_id, group_id=group_id,
                         raised_at=now or utcnow(), raised_by=_who(),
                         open_key=_key(subject_type, subject_id, code, group_id))
    try:
        with session.begin_nested():
            session.add(item)
            session.flush()
    except IntegrityError:  # raised concurrently by another process: that one stands
        return open_item(subject_type, subject_id, code, group_id)
    record("attention.raised", object_type=subject_type,
           object_id=group_id if subject_type == "member" else subject_id, org_id=org_id,
           summary={"code": code, "subject_id": subject_id, **params})
    return item


def resolve(subject_type: str, subject_id: int | None = None,
            codes: Iterable[str] | str | None = None, *, group_id: int | None = None,
            now: datetime | None = None) -> int:
    """Resolve the open items of a subject (all its reasons, or ``codes``); audited."""
    session = get_session()
    query = select(AttentionItem).where(AttentionItem.resolved_at.is_(None),
                                        AttentionItem.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(AttentionItem.subject_id == subject_id)
    if group_id is not None:
        query = query.where(AttentionItem.group_id == group_id)
    if codes is not None:
        query = query.where(AttentionItem.code.in_([codes] if isinstance(codes, str)
                                                   else list(codes)))
    now = now or utcnow()
    who = _who()
    items = session.exec(query).all()
    for item in items:
        item.resolved_at, item.resolved_by, item.open_key = now, who, None
        session.add(item)
        record("attention.resolved", object_type=item.subject_type,
               object_id=item.group_id if item.subject_type == "member" else item.subject_id,
               org_id=item.org_id, summary={"code": item.code, "subject_id": item.subject_id})
    return len(items)


def params_of(item: AttentionItem) -> dict:
    try:
        value = json.loads(item.params) if item.params else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def text_of(item: AttentionItem) -> str:
    """The item's reason in the reader's language."""
    return reasons.attention_text(reasons.reason(item.code, **params_of(item)))


# --- groups -----------------------------------------------------------------------------


def flag_group(group: SourceGroup, code: str, **params) -> AttentionItem:
    """Raise a group-level item and show it on the group."""
    item = raise_item("group", group.id, code, org_id=group.org_id, group_id=group.id,
                      **params)
    sync_group_flag(group)
    return item


def clear_group(group: SourceGroup, codes: Iterable[str] | str | None = None) -> int:
    """Resolve the group's items (all, or ``codes``) and update its flag."""
    if group.id is None:
        return 0
    resolved = resolve("group", group.id, codes)
    if resolved or group.needs_attention:
        sync_group_flag(group)
    return resolved


def sync_group_flag(group: SourceGroup) -> None:
    """``needs_attention`` while the group has open group-level items; the newest one's
    reason is the one shown."""
    session = get_session()
    session.flush()
    newest = session.exec(
        select(AttentionItem).where(AttentionItem.subject_type == "group",
                                    AttentionItem.subject_id == group.id,
                                    AttentionItem.resolved_at.is_(None))
        .order_by(AttentionItem.raised_at.desc(), AttentionItem.id.desc())).first()
    flagged = newest is not None
    stored = reasons.reason(newest.code, **params_of(newest)) if newest else None
    if group.needs_attention != flagged or group.attention_reason != stored:
        group.needs_attention = flagged
        group.attention_reason = stored
        group.updated_at = utcnow()
        session.add(group)


def sync_unaddable(group: SourceGroup) -> None:
    """The group's «N members could not be added» item follows its unaddable members."""
    unaddable = get_session().scalar(
        sa.select(sa.func.count()).select_from(GroupMember)
        .where(GroupMember.group_id == group.id, GroupMember.state == states.UNADDABLE)) or 0
    if unaddable:
        flag_group(group, reasons.ADD_FAILED, count=unaddable)
    else:
        clear_group(group, reasons.ADD_FAILED)


def sync_chat_link(chat: MaxChat) -> None:
    """The chat's «no join link» item follows the people waiting for one: members Max will
    not add (``unaddable``) in the chat's groups while the chat has no link."""
    waiting = 0
    if not chat.link:
        waiting = get_session().scalar(
            sa.select(sa.func.count()).select_from(GroupMember)
            .join(SourceGroup, SourceGroup.id == GroupMember.group_id)
            .where(SourceGroup.max_chat_id == chat.id,
                   GroupMember.state == states.UNADDABLE)) or 0
    if waiting:
        raise_item("chat", chat.id, reasons.CHAT_LINK_MISSING, org_id=chat.org_id,
                   count=waiting)
    else:
        resolve("chat", chat.id, reasons.CHAT_LINK_MISSING)


def open_count(subject_type: str | None = None, code: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(AttentionItem).where(
        AttentionItem.resolved_at.is_(None))
    if subject_type:
        query = query.where(AttentionItem.subject_type == subject_type)
    if code:
        query = query.where(AttentionItem.code == code)
    return get_session().scalar(query) or 0
