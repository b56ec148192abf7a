"""Unbind an employee's Max account (a coordinator's decision, with a reason), optionally
with a fresh invitation to the employee's own e-mail (``rebind``), and take that account out
of every chat the tool added it to.

:func:`request_unlink` decides in one transaction: ``Employee.max_user_id`` cleared, the
employee's memberships not in a chat back to ``not_linked``, their unused links expired,
the identity items resolved, a :class:`IdentityUnlink` row with one
:class:`UnlinkRemoval` per chat the tool added the account to, audited as
``identity.unlinked`` or ``identity.rebind``; memberships in a chat on their own (the
account joined without the tool) are ``left`` at once, the account itself stays there.
:func:`process_due` (every ``run-due``) carries out the removals with the loop of
:mod:`migrator.engine.removal` (the intent committed before each ``DELETE``; a re-run that
finds the account gone calls nothing), after which the memberships are ``left`` (reason
``unlinked``: added again once the employee links their own account). The chat's owner and
admins stay, and so does an account still needed in the chat by another employee record
linked to it (one person, two records).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlmodel import select

from migrator.attention.service import resolve
from migrator.audit.service import Actor, acting_as, record
from migrator.db import get_session, utcnow
from migrator.engine import leases, removal
from migrator.engine.models import IdentityUnlink, Step, UnlinkRemoval
from migrator.groups import states
from migrator.groups.attention import IDENTITY_CONFLICT, NAME_MISMATCH
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.errors import MaxError
from migrator.max.models import MaxChat, MaxChatMember
from migrator.people.invites import expire_unused_tokens, invite_again
from migrator.people.models import Employee

log = logging.getLogger("migrator.engine")

IDENTITY_CODES = (IDENTITY_CONFLICT, NAME_MISMATCH)
MAX_ATTEMPTS = 5
CLOCK_SLACK_SECONDS = 120


class UnlinkRefused(Exception):
    """The account may not be unbound: ``code`` is ``invalid`` (400), ``forbidden`` (403) or
    ``conflict`` (409); the message is for people."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def _brought_in(employee_id: int):
    """Memberships of the employee the tool brought into a linked chat (or is adding)."""
    return (GroupMember.employee_id == employee_id,
            sa.or_(sa.and_(GroupMember.by_tool.is_(True),
                           GroupMember.state.in_(states.IN_CHAT)),
                   GroupMember.state == states.ADDING))


def chats_to_leave(emp: Employee) -> list[MaxChat]:
    """The chats the tool added the employee's account to (what an unlink removes it from)."""
    return list(get_session().exec(
        select(MaxChat).where(MaxChat.id.in_(
            select(SourceGroup.max_chat_id)
            .join(GroupMember, GroupMember.group_id == SourceGroup.id)
            .where(*_brought_in(emp.id), SourceGroup.max_chat_id.is_not(None))))
        .order_by(MaxChat.id)).all())


def check(emp: Employee, user) -> None:
    role = getattr(user, "role", "admin") if user is not None else "admin"
    if role not in ("admin", "coordinator"):
        raise UnlinkRefused("forbidden", str(_l("This role may not unlink Max accounts.")))
    if emp.max_user_id is None:
        raise UnlinkRefused("conflict", str(_l("The employee has no linked Max account.")))


def request_unlink(emp: Employee, user, reason: str, *, rebind: bool = False,
                   now: datetime | None = None) -> IdentityUnlink:
    """Unbind the employee's Max account (not committed); raises :class:`UnlinkRefused`."""
    reason = (reason or "").strip()
    if not reason:
        raise UnlinkRefused("invalid", str(_l("A reason is required.")),
                            {"reason": str(_l("A reason is required."))})
    check(emp, user)
    session = get_session()
    now = now or utcnow()
    account = emp.max_user_id
    chats = chats_to_leave(emp)
    who = getattr(user, "email", None) or "system:cli"
    row = IdentityUnlink(employee_id=emp.id, max_user_id=account,
                         action="rebind" if rebind else "unlink", reason=reason[:2000],
                         requested_by_id=getattr(user, "id", None), requested_by=who[:200],
                         requested_at=now, next_attempt_at=now)
    session.add(row)
    session.flush()
    for chat in chats:
        session.add(UnlinkRemoval(unlink_id=row.id, chat_pk=chat.id, chat_id=chat.chat_id,
                                  max_user_id=account, updated_at=now))
    if not chats:
        row.status, row.finished_at = "done", now
    emp.max_user_id, emp.linked_at, emp.updated_at = None, None, now
    session.add_all([emp, row])
    session.flush()
    waiting = states.unlink_employee(emp.id, now)
    # in a chat on their own (not the tool's doing, so not removed): that was the unbound
    # account, not necessarily the employee's; they count as out until they link again
    states.move_where(states.LEFT, GroupMember.employee_id == emp.id,
                      GroupMember.state.in_(states.IN_CHAT), GroupMember.by_tool.is_(False),
                      now=now, reason=states.UNLINKED)
    resolve("member", emp.id, IDENTITY_CODES, now=now)
    invited = False
    if rebind:  # the rightful person links again through their own e-mail
        invited = invite_again(emp, f"rebind:{row.id}:{emp.id}", now)
    else:
        expire_unused_tokens(emp, now)
    record("identity.rebind" if rebind else "identity.unlinked", object_type="employee",
           object_id=emp.id, org_id=emp.org_id,
           summary={"reason": reason[:500], "max_user_id": account, "unlink_id": row.id,
                    "chats": [c.chat_id for c in chats], "memberships_waiting": waiting,
                    **({"invited": invited} if rebind else {})})
    log.info("employee %r: Max account %s unbound by %s (%s)", emp, account, who, row.action)
    return row


def latest(emp: Employee) -> IdentityUnlink | None:
    return get_session().exec(select(IdentityUnlink).where(
        IdentityUnlink.employee_id == emp.id).order_by(IdentityUnlink.id.desc())).first()


# -- carrying it out ---------------------------------------------------------------------


def process_due(rid: str, client_factory, now: datetime | None = None,
                actor: Actor | None = None) -> int:
    """Carry out the due unlinks (pending, or running with an expired lease); how many
    finished."""
    done = 0
    for row in leases.claimed(IdentityUnlink, rid, now or utcnow()):
        with acting_as(actor or Actor("job", "runner", rid)):
            done += process(row, client_factory)
    return done


def process(row: IdentityUnlink, client_factory) -> int:
    """Run one claimed unlink to its end (1), or leave it for a later run (0)."""
    session = get_session()
    session.refresh(row)
    held = _add_in_flight(row)
    if held is not None:  # a runner's add call for them may still land: after it
        leases.release(row, "pending", held)
        session.commit()
        return 0
    try:
        todo = list(session.exec(select(UnlinkRemoval).where(
            UnlinkRemoval.unlink_id == row.id, UnlinkRemoval.status.in_(removal.TODO))
            .order_by(UnlinkRemoval.chat_pk)).all())
        client = client_factory() if todo else None
        for chat_row in todo:
            _remove_from(row, chat_row, client)
        _finish(row)
        session.commit()
        return 1
    except MaxError as exc:
        session.rollback()
        _failed_attempt(session.get(IdentityUnlink, row.id), str(exc),
                        exc.retryable, getattr(exc, "retry_after", None) or 0)
    except Exception as exc:  # a bug or an outage of ours: tried again later, bounded
        log.exception("unlink %r failed", row)
        session.rollback()
        _failed_attempt(session.get(IdentityUnlink, row.id), f"{type(exc).__name__}: {exc}",
                        True, 60)
    session.commit()
    return 0


def _add_in_flight(row: IdentityUnlink) -> datetime | None:
    """Until when a runner holds the add step of a group where the employee's add call is in
    flight (``adding``); None when nothing is in flight."""
    chats = (select(SourceGroup.max_chat_id)
             .join(GroupMember, GroupMember.group_id == SourceGroup.id)
             .where(GroupMember.employee_id == row.employee_id,
                    GroupMember.state == states.ADDING))
    # one add step adds for every group linked to its chat
    groups = select(SourceGroup.id).where(SourceGroup.max_chat_id.in_(chats))
    return get_session().scalar(select(sa.func.max(Step.claimed_until)).where(
        Step.group_id.in_(groups), Step.kind == "add_members", Step.claimed_by.is_not(None),
        Step.claimed_until > utcnow()))


def _failed_attempt(row: IdentityUnlink, error: str, retryable: bool,
                    at_least: float) -> None:
    row.attempts += 1
    row.last_error = error[:2000]
    row.claimed_by = row.claimed_until = None
    if retryable and row.attempts < MAX_ATTEMPTS:
        delay = max(min(300, 5 * 2 ** (row.attempts - 1)), at_least)
        row.status, row.next_attempt_at = "pending", utcnow() + timedelta(seconds=delay)
    else:
        row.status, row.finished_at = "failed", utcnow()
        record("identity.unlink_failed", object_type="employee", object_id=row.employee_id,
               summary={"unlink_id": row.id, "error": error[:200]})
    get_session().add(row)


def _memberships(row: IdentityUnlink, chat_pk: int) -> list[GroupMember]:
    return list(get_session().exec(select(GroupMember).where(
        *_brought_in(row.employee_id),
        GroupMember.group_id.in_(select(SourceGroup.id).where(
            SourceGroup.max_chat_id == chat_pk)))).all())


def _there_before(row: IdentityUnlink, chat_row: UnlinkRemoval, there: dict) -> bool:
    """Max says the account joined well before the tool added it: not the tool's doing."""
    added = [m.added_at for m in _memberships(row, chat_row.chat_pk) if m.added_at]
    joined = there.get("join_time")
    if not added or not isinstance(joined, int | float):
        return False
    seconds = joined / 1000 if joined > 10**11 else joined  # Max's times are milliseconds
    return seconds < min(added).timestamp() - CLOCK_SLACK_SECONDS


def _remove_from(row: IdentityUnlink, chat_row: UnlinkRemoval, client) -> None:
    def keep(r: UnlinkRemoval, there: dict) -> bool:
        return _there_before(row, r, there) or removal.needed_in_chat(
            r.chat_pk, r.max_user_id, not_employee=row.employee_id)

    def out(r: UnlinkRemoval) -> None:
        session = get_session()
        member = session.get(MaxChatMember, (r.chat_pk, r.max_user_id))
        if member is not None and member.is_present:
            member.is_present, member.updated_at = False, utcnow()
            session.add(member)
        if r.status == "removed":
            emp = session.get(Employee, row.employee_id)
            record("member.removed", object_type="employee", object_id=row.employee_id,
                   org_id=emp.org_id if emp else None,
                   summary={"unlink_id": row.id, "chat_id": r.chat_id,
                            "max_user_id": r.max_user_id, "employee_id": row.employee_id})

    removal.remove_listed(chat_row.chat_id, [chat_row], client, keep=keep, out=out,
                          renew=lambda: leases.renew(row))


def _finish(row: IdentityUnlink) -> None:
    """The employee's memberships in those chats follow (``left``, reason ``unlinked``; an
    add call that was in flight: waiting again), counts, the request closed."""
    session = get_session()
    now = utcnow()
    chats = [pk for (pk,) in session.execute(sa.select(UnlinkRemoval.chat_pk).where(
        UnlinkRemoval.unlink_id == row.id))]
    for chat_pk in chats:
        for member in _memberships(row, chat_pk):
            if member.state == states.ADDING:
                states.move(member, states.LINKED, now=now)
                states.move(member, states.NOT_LINKED, now=now)
            else:
                states.move(member, states.LEFT, now=now)
                member.reason = states.UNLINKED
                session.add(member)
    counts = dict(session.exec(
        select(UnlinkRemoval.status, sa.func.count()).where(
            UnlinkRemoval.unlink_id == row.id).group_by(UnlinkRemoval.status)).all())
    row.removed = counts.get("removed", 0)
    row.absent = counts.get("absent", 0)
    row.kept = counts.get("kept", 0)
    row.status, row.finished_at = "done", now
    row.claimed_by = row.claimed_until = row.last_error = None
    session.add(row)
    emp = session.get(Employee, row.employee_id)
    record("identity.unlink_done", object_type="employee", object_id=row.employee_id,
           org_id=emp.org_id if emp else None,
           summary={"unlink_id": row.id, "max_user_id": row.max_user_id,
                    "removed": row.removed, "absent": row.absent, "kept": row.kept})


def unlink_json(row: IdentityUnlink | None) -> dict | None:
    if row is None:
        return None

    def iso(value):
        return value.isoformat() if value else None

    return {"id": row.id, "employee_id": row.employee_id, "action": row.action,
            "status": row.status, "reason": row.reason, "max_user_id": row.max_user_id,
            "requested_by": row.requested_by, "requested_at": iso(row.requested_at),
            "removed": row.removed, "absent": row.absent, "kept": row.kept,
            "last_error": row.last_error, "finished_at": iso(row.finished_at)}
