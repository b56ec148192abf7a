"""The invitation step: done once everyone who can be mailed is invited."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from enginetest import past_wave, step

from migrator.audit.models import AuditEvent
from migrator.db import get_session, utcnow
from migrator.engine.runner import run_due
from migrator.groups.attention import INVALID_EMAILS, parse
from migrator.groups.models import GroupMember


def test_invite_step_succeeds_with_attention_when_only_unusable_addresses_are_left(
        sandbox, ctx, make_org, make_employee, make_group, make_user):
    org = make_org()
    emps = [make_employee(org)]
    group = make_group(org, members=emps)
    admin = make_user("admin")
    broken = make_employee(org, email="ivanov.example.ru")  # no @: cannot be mailed
    get_session().add(GroupMember(group_id=group.id, employee_id=broken.id))
    get_session().commit()
    later = utcnow() + timedelta(days=1)
    past_wave([group], admin, add_members_at=later, announce_at=later,
              cutover_at=later + timedelta(hours=1), deadline=later + timedelta(days=1))
    run_due(send_mail=False)
    s = step(group, "invite")
    assert s.status == "succeeded", s.last_error
    get_session().refresh(group)
    assert group.needs_attention and parse(group.attention_reason) == (
        INVALID_EMAILS, {"count": 1})
    members = {m.employee_id: m.invited_at for m in get_session().scalars(
        sa.select(GroupMember).where(GroupMember.group_id == group.id))}
    assert members[broken.id] is None and members[emps[0].id] is not None
    done = get_session().scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "step.succeeded", AuditEvent.object_id == str(s.id))).one()
    assert '"invalid_email":1' in done.summary
