"""Identity safety: a second account pressing a used invitation is told a coordinator will
contact them, audited as identity.conflict and raised as «Возможна чужая привязка»; a link
whose Max profile name lacks the employee's surname is flagged for review."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from migrator.attention.models import AttentionItem
from migrator.audit.models import AuditEvent
from migrator.mail.models import OutboxMessage
from migrator.people.identity import normalise, surname_matches
from migrator.people.invite_models import BotMessage
from migrator.people.invites import handle_bot_started, issue_invitations
from migrator.people.models import Employee


def _token(ctx) -> str:
    body = ctx.scalars(sa.select(OutboxMessage.body_text)).first()
    return re.search(r"\?start=([A-Za-z0-9_-]+)", body).group(1)


def _open(ctx, code: str) -> list[AttentionItem]:
    ctx.expire_all()
    return list(ctx.scalars(sa.select(AttentionItem).where(
        AttentionItem.code == code, AttentionItem.resolved_at.is_(None))))


@pytest.mark.parametrize(("full_name", "max_name", "matches"), [
    ("Иванов Иван Иванович", "Ivan Ivanov", True),
    ("Кузнецова Мария Петровна", "Maria Kuznetsova", True),
    ("Соловьёв Пётр", "Petr Solovyov", True),
    ("Шевченко Анна", "Анна ШЕВЧЕНКО", True),
    ("Хабибуллин Рустам", "Rustam Khabibullin", True),
    ("Семёнова Ольга", "Ольга Семенова", True),
    ("Иванов Иван", "Пётр Сидоров", False),
    ("Иванов Иван", "Ivan", False),
    ("Иванов Иван", None, True),  # no profile name: nothing to compare
])
def test_surnames_are_compared_after_normalising(full_name, max_name, matches):
    assert surname_matches(full_name, max_name) is matches


def test_normalise():
    assert normalise("  Ёлкин-ЩУКИН ") == "елкин щукин"
    assert normalise("Shchukin") == "щукин"


def test_a_second_account_on_a_used_link_is_a_possible_foreign_link(
        ctx, make_org, make_employee, make_group, make_user, client, login):
    org = make_org()
    emp = make_employee(org, full_name="Орлова Анна Петровна")
    group = make_group(org, members=[emp])
    issue_invitations(group)
    ctx.commit()
    token = _token(ctx)
    assert handle_bot_started(token, 5001, "Анна Орлова", update_key="u1") == "linked"
    assert _open(ctx, "name_mismatch") == []  # the names agree
    # the e-mail was forwarded: someone else presses the link
    assert handle_bot_started(token, 6002, "Пётр Сидоров", update_key="u2") == "used"
    ctx.commit()
    assert ctx.get(Employee, emp.id).max_user_id == 5001  # nothing changed silently
    reply = ctx.scalars(sa.select(BotMessage).where(BotMessage.max_user_id == 6002)).one()
    assert "Координатор" in reply.text and "свяжется с вами" in reply.text
    [event] = ctx.scalars(sa.select(AuditEvent).where(AuditEvent.action == "identity.conflict"))
    summary = json.loads(event.summary)
    assert (summary["max_user_id"], summary["bound_max_user_id"]) == (6002, 5001)
    assert token not in event.summary
    [item] = _open(ctx, "identity_conflict")
    assert (item.subject_type, item.subject_id, item.org_id) == ("member", emp.id, org.id)
    ctx.rollback()

    login(client, make_user("coordinator", orgs=[org]))
    page = client.get("/attention").get_data(as_text=True)
    assert "Возможна чужая привязка" in page and "Орлова Анна Петровна" in page
    assert "6002" in page and "5001" in page
    # another organisation's coordinator does not see it
    other = client.application.test_client()
    login(other, make_user("coordinator", orgs=[make_org()]))
    assert "Орлова Анна Петровна" not in other.get("/attention").get_data(as_text=True)


def test_a_link_to_a_profile_without_the_surname_is_flagged(ctx, make_org, make_employee,
                                                             make_group):
    org = make_org()
    emp = make_employee(org, full_name="Орлова Анна Петровна")
    group = make_group(org, members=[emp])
    issue_invitations(group)
    ctx.commit()
    assert handle_bot_started(_token(ctx), 7003, "Petr Sidorov") == "linked"
    ctx.commit()
    [item] = _open(ctx, "name_mismatch")
    assert item.subject_id == emp.id and "Petr Sidorov" in item.params
    assert ctx.get(Employee, emp.id).max_user_id == 7003  # flagged for review, still linked
