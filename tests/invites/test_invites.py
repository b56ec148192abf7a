"""Invitations: tokens and deep links in real e-mails, binding on Start, reminders, replies."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import sqlalchemy as sa

from migrator.audit.models import AuditEvent
from migrator.db import utcnow
from migrator.groups.models import GroupMember
from migrator.mail.models import OutboxMessage
from migrator.mail.service import send_due
from migrator.people.invite_models import BotMessage
from migrator.people.invites import (
    deep_link,
    handle_bot_started,
    issue_invitations,
    preview_invitations,
)
from migrator.people.models import Employee, InviteToken

LINK_RE = re.compile(r"https://max\.ru/migrator_test_bot\?start=([A-Za-z0-9_-]+)")


def _outbox(ctx):
    ctx.expire_all()
    return ctx.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()


def _bot_messages(ctx):
    ctx.expire_all()
    return ctx.scalars(sa.select(BotMessage).order_by(BotMessage.id)).all()


def _member(ctx, group, emp):
    ctx.expire_all()
    return ctx.get(GroupMember, (group.id, emp.id))


def _token_from(text: str) -> str:
    match = LINK_RE.search(text)
    assert match, text
    return match.group(1)


def test_invites_unlinked_members_once_and_skips_linked(ctx, make_org, make_employee,
                                                        make_group):
    org = make_org(name="МБОУ СОШ №1")
    a, b = make_employee(org), make_employee(org)
    linked = make_employee(org, max_user_id=900)
    group = make_group(org, members=[a, b, linked], name="Учителя")
    now = utcnow()
    preview = preview_invitations(group, now=now)
    assert (preview.invites, preview.reminders, preview.skipped_linked) == (2, 0, 1)
    assert _outbox(ctx) == [] and ctx.scalars(sa.select(InviteToken)).all() == []

    stats = issue_invitations(group, now=now)
    assert (stats.invites, stats.reminders, stats.skipped_linked, stats.members) == (2, 0, 1, 3)
    ctx.commit()
    rows = _outbox(ctx)
    assert [r.idem_key for r in rows] == [f"invite:{group.id}:{a.id}", f"invite:{group.id}:{b.id}"]
    assert {r.kind for r in rows} == {"invite"} and all(r.org_id == org.id for r in rows)
    assert _member(ctx, group, a).invited_at == now
    assert _member(ctx, group, linked).invited_at is None
    # only hashes are stored
    tokens = ctx.scalars(sa.select(InviteToken)).all()
    raw = _token_from(rows[0].body_text)
    assert len(tokens) == 2 and all(len(t.token_hash) == 64 for t in tokens)
    assert hashlib.sha256(raw.encode()).hexdigest() in {t.token_hash for t in tokens}
    assert raw not in {t.token_hash for t in tokens}
    assert tokens[0].expires_at == now + timedelta(days=30)

    again = issue_invitations(group, now=now)  # idempotent
    ctx.commit()
    assert (again.invites, again.reminders, again.waiting) == (0, 0, 2)
    assert len(_outbox(ctx)) == 2 and len(ctx.scalars(sa.select(InviteToken)).all()) == 2
    assert preview_invitations(group, now=now).invites == 0


def test_invitation_email_link_binds_via_bot_started(ctx, app, smtp_server, make_org,
                                                     make_employee, make_group):
    org = make_org(name="Департамент образования")
    emp = make_employee(org, full_name="Иванов Иван Иванович")
    group = make_group(org, members=[emp], name="Руководители школ")
    issue_invitations(group)
    ctx.commit()
    assert send_due().sent == 1
    [mail] = smtp_server.wait_for(1)
    assert mail["To"] == emp.email
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Уважаемый Иван Иванович!" in text
    assert "«Руководители школ»" in text and "Департамент образования" in text
    assert "СЭД" in text and "СЭД" in html
    token = _token_from(text)
    assert len(token) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert f'href="{deep_link(token)}"' in html

    assert handle_bot_started(token, 5551, "Иван") == "linked"
    ctx.commit()
    ctx.expire_all()
    emp = ctx.get(Employee, emp.id)
    assert emp.max_user_id == 5551 and emp.linked_at is not None
    tok = ctx.scalars(sa.select(InviteToken)).one()
    assert tok.used_at is not None and tok.used_by_max_user_id == 5551
    [event] = ctx.scalars(sa.select(AuditEvent).where(AuditEvent.action == "employee.linked"))
    assert json.loads(event.summary)["max_user_id"] == 5551 and token not in event.summary
    [reply] = _bot_messages(ctx)
    assert reply.max_user_id == 5551 and reply.text.startswith("Вы подключены, Иван Иванович!")

    assert handle_bot_started(token, 5551, "Иван") == "already"
    assert handle_bot_started(token, 7777, "Пётр") == "used"
    ctx.commit()
    replies = _bot_messages(ctx)
    assert [r.max_user_id for r in replies] == [5551, 5551, 7777]
    assert "уже подключены" in replies[1].text and "уже была использована" in replies[2].text
    assert ctx.get(Employee, emp.id).max_user_id == 5551
    # linked members are not invited again
    assert issue_invitations(group).skipped_linked == 1


def test_expired_unknown_and_conflicting_tokens(ctx, make_org, make_employee, make_group):
    org = make_org()
    emp, other = make_employee(org), make_employee(org, max_user_id=4242)
    group = make_group(org, members=[emp])
    now = utcnow()
    issue_invitations(group, now=now)
    ctx.commit()
    token = _token_from(_outbox(ctx)[0].body_text)

    assert handle_bot_started(token, 1, None, now=now + timedelta(days=31)) == "expired"
    assert handle_bot_started("no-such-token", 2, None) == "unknown"
    assert handle_bot_started("", 3, None) == "unknown"
    assert handle_bot_started("x" * 65, 4, None) == "unknown"
    # this employee is already bound to another Max user
    emp.max_user_id = 4343
    ctx.add(emp)
    ctx.flush()
    assert handle_bot_started(token, 4242, None, update_key="upd-1") == "conflict"
    ctx.commit()
    ctx.expire_all()
    assert ctx.get(Employee, emp.id).max_user_id == 4343
    assert ctx.get(Employee, other.id).max_user_id == 4242
    replies = {r.max_user_id: r for r in _bot_messages(ctx)}
    assert set(replies) == {1, 2, 3, 4, 4242}
    assert "истёк" in replies[1].text and "не распознана" in replies[2].text
    assert "координатору" in replies[4242].text and replies[4242].idem_key == "botreply:upd-1"
    # the same update handled twice queues one reply
    handle_bot_started(token, 4242, None, update_key="upd-1")
    ctx.commit()
    assert len(_bot_messages(ctx)) == 5
    emp = ctx.get(Employee, emp.id)
    emp.max_user_id = None
    ctx.add(emp)
    ctx.flush()
    assert handle_bot_started(token, 99, None) == "linked"  # the token is still unused


def test_reminders_every_n_days_bounded(ctx, app, make_org, make_employee, make_group):
    app.config.update(REMINDER_EVERY_DAYS=3, MAX_REMINDERS=2)
    org = make_org()
    emp = make_employee(org)
    group = make_group(org, members=[emp])
    t0 = utcnow()
    issue_invitations(group, now=t0)
    ctx.commit()
    assert issue_invitations(group, now=t0 + timedelta(days=2)).waiting == 1
    s1 = issue_invitations(group, now=t0 + timedelta(days=3))
    assert s1.reminders == 1
    assert issue_invitations(group, now=t0 + timedelta(days=5)).reminders == 0
    assert preview_invitations(group, now=t0 + timedelta(days=6)).reminders == 1
    assert issue_invitations(group, now=t0 + timedelta(days=6)).reminders == 1
    s3 = issue_invitations(group, now=t0 + timedelta(days=30))
    assert (s3.reminders, s3.exhausted) == (0, 1)
    ctx.commit()
    rows = _outbox(ctx)
    assert [r.idem_key for r in rows] == [f"invite:{group.id}:{emp.id}",
                                          f"reminder:{group.id}:{emp.id}:1",
                                          f"reminder:{group.id}:{emp.id}:2"]
    assert rows[1].kind == "reminder" and rows[1].subject.startswith("Напоминание")
    member = _member(ctx, group, emp)
    assert member.reminder_count == 2 and member.reminded_at == t0 + timedelta(days=6)
    # each reminder carries a fresh, working token
    tokens = [_token_from(r.body_text) for r in rows]
    assert len(set(tokens)) == 3
    assert handle_bot_started(tokens[2], 31, None, now=t0 + timedelta(days=7)) == "linked"
    # the first e-mail's link, pressed later by the same person: no alarm
    assert handle_bot_started(tokens[0], 31, None, now=t0 + timedelta(days=8)) == "already"
    assert handle_bot_started(tokens[1], 32, None, now=t0 + timedelta(days=40)) == "expired"
    # explicit arguments win over the settings
    assert issue_invitations(group, now=t0 + timedelta(days=60), max_reminders=5).skipped_linked


def test_one_email_per_person_per_day_across_groups(ctx, make_org, make_employee, make_group):
    org = make_org()
    shared, only_b = make_employee(org), make_employee(org)
    g1 = make_group(org, members=[shared])
    g2 = make_group(org, members=[shared, only_b])
    now = utcnow()
    assert issue_invitations(g1, now=now).invites == 1
    stats = issue_invitations(g2, now=now + timedelta(hours=2))
    assert (stats.invites, stats.merged) == (1, 1)
    ctx.commit()
    assert [r.to_addr for r in _outbox(ctx)] == [shared.email, only_b.email]
    assert _member(ctx, g2, shared).invited_at == now + timedelta(hours=2)
    # a day later the reminder cycle is per group again
    later = issue_invitations(g2, now=now + timedelta(days=4))
    assert later.reminders == 2 and later.merged == 0


def test_html_escapes_names(ctx, smtp_server, make_org, make_employee, make_group):
    org = make_org(name="Школа <b>№1</b>")
    emp = make_employee(org, full_name="Иванов <script>alert(1)</script> Иванович")
    group = make_group(org, members=[emp], name="Учителя & завучи")
    issue_invitations(group)
    ctx.commit()
    send_due()
    [mail] = smtp_server.wait_for(1)
    html = mail.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Учителя &amp; завучи" in html and "Школа &lt;b&gt;№1&lt;/b&gt;" in html
    assert "<script>alert(1)</script>" in mail.get_body(("plain",)).get_content()


def test_an_unmailable_address_is_skipped_not_fatal(ctx, make_org, make_employee, make_group):
    org = make_org()
    bad, good = make_employee(org, email="no-at-sign.example.org"), make_employee(org)
    group = make_group(org, members=[bad, good])
    stats = issue_invitations(group)
    assert (stats.invites, stats.invalid_email) == (1, 1)
    assert stats.employee_ids["invalid_email"] == [bad.id]
    ctx.commit()
    assert [r.to_addr for r in _outbox(ctx)] == [good.email]
    assert _member(ctx, group, bad).invited_at is None
