"""Invitations: e-mail each member without Max their deep link (and reminders)."""

from __future__ import annotations

import logging

from sqlmodel import select

from migrator.attention.service import clear_group, flag_group
from migrator.db import get_session
from migrator.engine.outcomes import Outcome
from migrator.groups import attention
from migrator.groups.models import GroupMember
from migrator.mail.service import valid_address
from migrator.people.invites import issue_invitations
from migrator.people.models import Employee
from migrator.waves.settings import get_setting

log = logging.getLogger("migrator.engine")


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
