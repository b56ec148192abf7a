"""Personal invitations: deep-link tokens, invitation and reminder e-mails, the answer to
Start in Max, and the bot's replies (sent from an outbox after commit).

Token rules: ``secrets.token_urlsafe(32)`` (43 URL-safe characters, at most 64 allowed),
single-use, expiring after ``INVITE_TOKEN_DAYS``; only its SHA-256 is stored.

One e-mail per person per day: when a person belongs to several groups invited on the same
day, the first group's e-mail (which lists every group of theirs that is planned in a
wave) is the only one; the other memberships are marked invited (or reminded) without a
second e-mail and counted as ``merged``. The link binds the person, not a group, so one
Start links them for all their groups.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from migrator.audit.service import Actor, acting_as, record
from migrator.db import get_session, utcnow
from migrator.groups import states
from migrator.groups.models import GroupMember, SourceGroup
from migrator.mail.models import OutboxMessage
from migrator.mail.outbox import Failure, SendStats, claim_due, send_claimed
from migrator.mail.service import queue_email_ex, valid_address
from migrator.mail.templates import render_email
from migrator.max.errors import MaxError
from migrator.max.service import calls_audited_with_outcome, record_calls
from migrator.max.updates import stopped_among
from migrator.org.models import Organisation
from migrator.people import identity
from migrator.people.invite_models import BotMessage
from migrator.people.models import Employee, InviteToken
from migrator.waves.models import Wave

log = logging.getLogger("migrator.people.invites")

TOKEN_MAX_LENGTH = 64
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LINK_TOKEN_RE = re.compile(r"https://max\.ru/[A-Za-z0-9_.]+\?start=([A-Za-z0-9_-]{1,64})")
BOT_SENDER = Actor("job", "bot-sender", "bot-sender")
MAX_GROUP_NAMES = 10  # groups named in one e-mail


# --- tokens and links -----------------------------------------------------------------


def new_token() -> str:
    """A fresh URL-safe token (43 characters)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def deep_link(token: str) -> str:
    """``https://max.ru/<MAX_BOT_USERNAME>?start=<token>``."""
    return f"https://max.ru/{current_app.config['MAX_BOT_USERNAME']}?start={token}"


# --- issuing invitations ----------------------------------------------------------------


@dataclass
class InviteStats:
    """The outcome (or, for a preview, the plan) of inviting one group's members."""

    members: int = 0
    invites: int = 0  # invitation e-mails queued
    reminders: int = 0  # reminder e-mails queued
    skipped_linked: int = 0  # already linked to Max: nothing to do
    waiting: int = 0  # invited; the next reminder is not due yet
    exhausted: int = 0  # every reminder has been sent; the person has still not linked
    merged: int = 0  # e-mailed today for another group: marked without a second e-mail
    invalid_email: int = 0  # the address cannot be mailed: skipped (fix the employee record)
    employee_ids: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def _add(self, what: str, employee_id: int) -> None:
        setattr(self, what, getattr(self, what) + 1)
        self.employee_ids.setdefault(what, []).append(employee_id)


@dataclass
class _Decision:
    member: GroupMember
    employee: Employee
    action: str  # invite | reminder | skipped_linked | waiting | exhausted
    number: int = 0  # the reminder's number (1, 2, ...)
    merged: bool = False


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _emailed_today(session, group: SourceGroup, emails: list[str], now: datetime) -> set[str]:
    """Addresses that got an invitation or reminder for ANOTHER group in the last day."""
    found: set[str] = set()
    since = now - timedelta(days=1)
    for chunk in _chunks(emails):
        rows = session.execute(
            sa.select(OutboxMessage.to_addr, OutboxMessage.idem_key).where(
                OutboxMessage.to_addr.in_(chunk),
                OutboxMessage.kind.in_(("invite", "reminder")),
                OutboxMessage.created_at > since, OutboxMessage.created_at <= now,
            )
        )
        for to_addr, key in rows:
            if key.split(":")[1:2] != [str(group.id)]:
                found.add(to_addr)
    return found


def _plan(group: SourceGroup, now: datetime, every_days: int, max_reminders: int
          ) -> list[_Decision]:
    session = get_session()
    rows = session.execute(
        sa.select(GroupMember, Employee)
        .join(Employee, Employee.id == GroupMember.employee_id)
        .where(GroupMember.group_id == group.id)
        .order_by(Employee.id)
    ).all()
    decisions = []
    for member, emp in rows:
        if emp.max_user_id is not None:
            decisions.append(_Decision(member, emp, "skipped_linked"))
        elif not valid_address(emp.email):
            decisions.append(_Decision(member, emp, "invalid_email"))
        elif member.invited_at is None:
            decisions.append(_Decision(member, emp, "invite"))
        elif member.reminder_count >= max_reminders:
            decisions.append(_Decision(member, emp, "exhausted"))
        elif now - (member.reminded_at or member.invited_at) >= timedelta(days=every_days):
            decisions.append(_Decision(member, emp, "reminder", member.reminder_count + 1))
        else:
            decisions.append(_Decision(member, emp, "waiting"))
    mailing = [d for d in decisions if d.action in ("invite", "reminder")]
    if mailing:
        today = _emailed_today(session, group, [d.employee.email for d in mailing], now)
        for d in mailing:
            d.merged = d.employee.email in today
    return decisions


def _stats(decisions: list[_Decision]) -> InviteStats:
    stats = InviteStats(members=len(decisions))
    for d in decisions:
        if d.merged:
            stats._add("merged", d.employee.id)
        else:
            stats._add({"invite": "invites", "reminder": "reminders"}.get(d.action, d.action),
                       d.employee.id)
    return stats


def _settings(reminder_every_days, max_reminders) -> tuple[int, int]:
    cfg = current_app.config
    every = cfg.get("REMINDER_EVERY_DAYS", 3) if reminder_every_days is None \
        else reminder_every_days
    most = cfg.get("MAX_REMINDERS", 3) if max_reminders is None else max_reminders
    return int(every), int(most)


def preview_invitations(group: SourceGroup, now: datetime | None = None, *,
                        reminder_every_days: int | None = None,
                        max_reminders: int | None = None) -> InviteStats:
    """What :func:`issue_invitations` would do now, without writing anything."""
    every, most = _settings(reminder_every_days, max_reminders)
    return _stats(_plan(group, now or utcnow(), every, most))


def _group_names(session, group: SourceGroup, employee_ids: list[int]) -> dict[int, list[str]]:
    """Per employee: this group and their other groups planned in a wave, by name."""
    names: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(employee_ids):
        rows = session.execute(
            sa.select(GroupMember.employee_id, SourceGroup.id, SourceGroup.name)
            .join(SourceGroup, SourceGroup.id == GroupMember.group_id)
            .where(GroupMember.employee_id.in_(chunk),
                   sa.or_(SourceGroup.id == group.id, SourceGroup.wave_id.is_not(None)))
            .order_by(SourceGroup.name)
        )
        for emp_id, group_id, name in rows:
            if group_id == group.id:
                names[emp_id].insert(0, name)
            else:
                names[emp_id].append(name)
    return {k: v[:MAX_GROUP_NAMES] for k, v in names.items()}


def issue_invitations(group: SourceGroup, *, now: datetime | None = None,
                      reminder_every_days: int | None = None,
                      max_reminders: int | None = None) -> InviteStats:
    """Queue invitations and due reminders for the group's unlinked members.

    Writes in the caller's transaction (nothing is committed). Idempotent: a second call
    at the same moment queues nothing (e-mails are keyed ``invite:<group>:<employee>`` and
    ``reminder:<group>:<employee>:<n>``). Tokens are stored as SHA-256 only.
    """
    session = get_session()
    now = now or utcnow()
    every, most = _settings(reminder_every_days, max_reminders)
    decisions = _plan(group, now, every, most)
    stats = _stats(decisions)
    mailing = [d for d in decisions if d.action in ("invite", "reminder")]
    if not mailing:
        return stats
    org = session.get(Organisation, group.org_id)
    wave = session.get(Wave, group.wave_id) if group.wave_id else None
    names = _group_names(session, group, [d.employee.id for d in mailing if not d.merged])
    expires_at = now + timedelta(days=int(current_app.config.get("INVITE_TOKEN_DAYS", 30)))
    for d in mailing:
        member, emp = d.member, d.employee
        if d.action == "invite":
            member.invited_at = now
        else:
            member.reminded_at = now
            member.reminder_count = d.number
        session.add(member)
        if d.merged:
            continue
        token = new_token()
        key = (f"invite:{group.id}:{emp.id}" if d.action == "invite"
               else f"reminder:{group.id}:{emp.id}:{d.number}")
        subject, text, html = render_email(
            d.action, full_name=emp.full_name, deep_link=deep_link(token),
            org_name=org.name if org else "", groups=names.get(emp.id, [group.name]),
            deadline=wave.deadline if wave else None, expires_at=expires_at,
            reminder_number=d.number,
        )
        _msg, created = queue_email_ex(key, emp.email, subject, text, html, kind=d.action,
                                       org_id=group.org_id, now=now)
        if created:  # a link that reached no e-mail is never stored
            session.add(InviteToken(token_hash=token_hash(token), employee_id=emp.id,
                                    created_at=now, expires_at=expires_at))
    session.flush()
    log.info("group %r: %d invitations, %d reminders queued, %d merged", group,
             stats.invites, stats.reminders, stats.merged)
    return stats


def invite_again(emp: Employee, idem_key: str, now: datetime | None = None) -> bool:
    """A fresh invitation to the employee's own e-mail (after their Max account was unbound,
    so the rightful person can link again), in the caller's transaction; False when the
    address cannot be mailed. Their earlier, unused links stop working."""
    session = get_session()
    now = now or utcnow()
    expire_unused_tokens(emp, now)
    if not valid_address(emp.email):
        return False
    org = session.get(Organisation, emp.org_id)
    names = [name for (name,) in session.execute(
        sa.select(SourceGroup.name).join(GroupMember, GroupMember.group_id == SourceGroup.id)
        .where(GroupMember.employee_id == emp.id, SourceGroup.wave_id.is_not(None))
        .order_by(SourceGroup.name).limit(MAX_GROUP_NAMES))]
    expires_at = now + timedelta(days=int(current_app.config.get("INVITE_TOKEN_DAYS", 30)))
    token = new_token()
    subject, text, html = render_email(
        "invite", full_name=emp.full_name, deep_link=deep_link(token),
        org_name=org.name if org else "", groups=names, deadline=None, expires_at=expires_at,
        reminder_number=0)
    _msg, created = queue_email_ex(idem_key, emp.email, subject, text, html, kind="invite",
                                   org_id=emp.org_id, now=now)
    if created:
        session.add(InviteToken(token_hash=token_hash(token), employee_id=emp.id,
                                created_at=now, expires_at=expires_at))
        session.flush()
    return created


def expire_unused_tokens(emp: Employee, now: datetime | None = None) -> int:
    """The employee's links not pressed yet stop working (a forwarded e-mail's included)."""
    now = now or utcnow()
    result = get_session().execute(
        sa.update(InviteToken)
        .where(InviteToken.employee_id == emp.id, InviteToken.used_at.is_(None),
               InviteToken.expires_at > now)
        .values(expires_at=now).execution_options(synchronize_session=False))
    return result.rowcount or 0


# --- the answer to Start ---------------------------------------------------------------

REPLIES = {
    "linked": ("Вы подключены{name}! Ваша учётная запись Max связана с сотрудником "
               "организации «{org}». В ближайшее время вас добавят в рабочие чаты. "
               "Напоминаем: Max используется для оперативного общения, официальная переписка "
               "по-прежнему ведётся по электронной почте и в СЭД."),
    "already": ("Вы уже подключены{name}. Рабочие чаты появятся в Max автоматически, "
                "повторно переходить по ссылке не нужно."),
    "used": ("Эта ссылка уже была использована с другой учётной записи Max. Координатор "
             "вашей организации свяжется с вами, чтобы разобраться, чья это запись."),
    "expired": ("Срок действия ссылки истёк. Новая ссылка придёт в письме-напоминании; "
                "при необходимости обратитесь к координатору вашей организации."),
    "unknown": ("Здравствуйте! Ссылка не распознана. Для подключения воспользуйтесь "
                "персональной ссылкой из официального письма, направленного на вашу "
                "служебную электронную почту."),
    "conflict": ("Ваша запись сотрудника уже связана с другой учётной записью Max. "
                 "Пожалуйста, обратитесь к координатору вашей организации."),
}


def _name_part(emp: Employee | None) -> str:
    words = (emp.full_name if emp else "").split()
    if len(words) >= 3:
        return f", {words[1]} {words[2]}"
    return f", {' '.join(words)}" if words else ""


def queue_bot_message(idem_key: str, max_user_id: int, text: str,
                      now: datetime | None = None) -> BotMessage:
    """Add a dialog message to the bot outbox in the caller's transaction (keyed, once)."""
    session = get_session()
    query = sa.select(BotMessage).where(BotMessage.idem_key == idem_key)
    found = session.scalar(query)
    if found is not None:
        return found
    now = now or utcnow()
    msg = BotMessage(idem_key=idem_key[:200], max_user_id=max_user_id, text=text[:4000],
                     created_at=now, next_attempt_at=now)
    try:
        with session.begin_nested():
            session.add(msg)
            session.flush()
    except IntegrityError:
        found = session.scalar(query)
        if found is None:
            raise
        return found
    return msg


def _bind(session, emp: Employee, tok: InviteToken, max_user_id: int, now: datetime) -> bool:
    """Bind in a savepoint; False if the write failed on a constraint."""
    try:
        with session.begin_nested():
            emp.max_user_id, emp.linked_at, emp.updated_at = max_user_id, now, now
            tok.used_at, tok.used_by_max_user_id = now, max_user_id
            session.add_all([emp, tok])
            session.flush()
            # their memberships can be added now: the next run of the engine does it
            states.link_employee(emp.id, now)
    except IntegrityError:
        return False
    return True


def handle_bot_started(payload: str | None, max_user_id: int, user_name: str | None, *,
                       update_key: str | None = None, now: datetime | None = None) -> str:
    """Link the person who pressed Start on a deep link; queue the bot's answer.

    Runs in the caller's (the update's) transaction. Returns ``linked``, ``already`` (the
    same Max user again), ``used`` (used by someone else), ``expired``, ``unknown`` or
    ``conflict`` (this employee is bound to another Max user). A Max user already bound to
    another employee record may link this one too: the token was sent to this record's own
    e-mail (one person, two records). ``update_key`` (the update's dedup key) keys the
    reply; without it the reply is keyed by the payload's hash, the user and the outcome.
    """
    session = get_session()
    now = now or utcnow()
    payload = (payload or "").strip()
    digest = token_hash(payload)
    tok = emp = None
    if _TOKEN_RE.match(payload):
        tok = session.scalar(sa.select(InviteToken).where(InviteToken.token_hash == digest)
                             .with_for_update())
    if tok is None:
        result = "unknown"
    elif tok.used_at is not None:
        emp = session.get(Employee, tok.employee_id)
        same = tok.used_by_max_user_id == max_user_id
        # the account that used it was unbound since: the link is spent, nothing binds
        result = "already" if same and emp is not None and emp.max_user_id == max_user_id \
            else "used"
        if result == "used" and emp is not None and not same:  # possibly not theirs
            identity.used_by_another(emp, tok.used_by_max_user_id, max_user_id, user_name,
                                     tok.id)
    elif tok.expires_at <= now:
        emp = session.get(Employee, tok.employee_id)
        # an old e-mail's link pressed after linking through a newer one: nothing is wrong
        result = "already" if emp is not None and emp.max_user_id == max_user_id else "expired"
    else:
        emp = session.scalar(sa.select(Employee).where(Employee.id == tok.employee_id)
                             .with_for_update())
        # the same account may already be linked to another record of the same person (two
        # organisations, two e-mails): this token came from this record's own invitation,
        # so linking it too is allowed
        other = session.scalar(sa.select(Employee.id).where(
            Employee.max_user_id == max_user_id, Employee.id != emp.id)
            .order_by(Employee.id).limit(1))
        if emp.max_user_id == max_user_id:
            tok.used_at, tok.used_by_max_user_id = now, max_user_id
            session.add(tok)
            result = "already"
        elif emp.max_user_id is not None:
            result = "conflict"
        elif _bind(session, emp, tok, max_user_id, now):
            result = "linked"
            identity.check_name(emp, max_user_id, user_name)
        else:
            result = "conflict"
        if result in ("linked", "conflict"):
            record(f"employee.{'linked' if result == 'linked' else 'link_conflict'}",
                   object_type="employee", object_id=emp.id, org_id=emp.org_id,
                   summary={"max_user_id": max_user_id, "token_id": tok.id,
                            "other_employee_id": other})
    org = session.get(Organisation, emp.org_id) if emp is not None else None
    text = REPLIES[result].format(name=_name_part(emp), org=org.name if org else "")
    key = (f"botreply:{update_key}" if update_key
           else f"botreply:{digest[:40]}:{max_user_id}:{result}")
    queue_bot_message(key, max_user_id, text, now=now)
    log.info("bot_started from Max user %s: %s", max_user_id, result)
    return result


STOPPED_BOT = "the person stopped the bot"  # a bot message's last_error: nobody was called


def send_bot_messages(client, limit: int = 100, now: datetime | None = None,
                      deadline: float | None = None) -> int:
    """Send due bot messages with ``client.send_message(text, user_id=...)``; the number sent.

    Claim → commit → call → mark sent (commit), like the e-mail sender
    (:func:`~migrator.mail.outbox.send_claimed`): at-least-once, the window is one message.
    Retryable Max errors back off and retry; others (the person blocked the bot, unknown
    user) and exhausted attempts end as ``failed``. Nothing is read between two calls, so
    no transaction is open while the shared rate limiter is waited on. ``deadline`` (a
    ``time.monotonic()``): no new message after it, the claimed rest is due again at once.
    """
    cfg = current_app.config
    session = get_session()
    now = now or utcnow()
    lease = int(cfg["MAIL_LEASE_SECONDS"])
    stats = SendStats()
    with acting_as(BOT_SENDER), calls_audited_with_outcome():
        claim = claim_due(session, BotMessage, limit=limit, now=now, lease_seconds=lease)
        stopped = stopped_among({row.max_user_id for row in claim.rows})
        session.commit()  # end the read before the first call

        def send(row: BotMessage) -> Failure | None:
            if row.max_user_id in stopped:  # they stopped the bot: nothing more goes out
                return Failure(STOPPED_BOT, permanent=True)
            try:
                client.send_message(row.text, user_id=row.max_user_id)
            except MaxError as exc:
                return Failure(str(exc), permanent=not exc.retryable)
            finally:  # into the transaction that records the outcome
                record_calls()
            return None

        def failed(row: BotMessage, error: str) -> None:
            if error != STOPPED_BOT:  # not a failure of the call
                record("bot_message.failed", object_type="bot_message", object_id=row.id,
                       summary={"max_user_id": row.max_user_id, "idem_key": row.idem_key,
                                "attempts": row.attempts, "error": error[:300]})

        send_claimed(session, BotMessage, claim, send, stats=stats, now=now,
                     lease_seconds=lease, max_attempts=int(cfg.get("BOT_MESSAGE_MAX_ATTEMPTS", 8)),
                     retry_base=int(cfg.get("MAIL_RETRY_SECONDS", 60)), on_failed=failed,
                     deadline=deadline)
    return stats.sent
