"""What needs a coordinator now: one query per section, each restricted to the user's scope.

A section's query is built by a function ``(within, now) -> SELECT``: ``within(query,
org_id_column)`` restricts a query to the scope (:func:`~migrator.auth.service.scoper`), read
once for the whole page. The overview reads each section's first rows and its total in one
query (:func:`overview`)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from migrator.attention.models import AttentionItem
from migrator.auth.service import scoper
from migrator.db import get_session
from migrator.directives.channels import without_max
from migrator.directives.models import Escalation, PublicChannel
from migrator.directives.service import open_escalations
from migrator.engine.models import Step
from migrator.groups import states
from migrator.groups.attention import CHAT_LINK_MISSING, IDENTITY_CONFLICT, NAME_MISMATCH
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.models import MaxChat
from migrator.org.models import Organisation
from migrator.people.models import Employee
from migrator.progress.service import (
    missing_rights_condition,
    step_overdue_condition,
    wave_overdue_condition,
)
from migrator.waves.models import Wave


@dataclass(frozen=True)
class Section:
    key: str
    title: object
    hint: object
    build: object  # a function (within, now) -> SELECT
    sorts: dict
    default_sort: str
    tiebreak: tuple = ()  # the primary key of the listed rows: equal sort values keep an order

    def query(self, user, now):
        """The SELECT of the section's rows in ``user``'s scope."""
        return self.build(scoper(user), now)


def _steps_in(status: str):
    """The query of a section listing the steps in ``status`` with their group and org."""

    def query(within, now):
        q = (sa.select(Step, SourceGroup, Organisation)
             .join(SourceGroup, SourceGroup.id == Step.group_id)
             .join(Organisation, Organisation.id == SourceGroup.org_id)
             .where(Step.status == status))
        return within(q, SourceGroup.org_id)

    return query


def _system(within, now):
    """Open system-wide items (the bot token refused, the webhook subscription lost): why
    nothing moves, so everyone signed in sees them."""
    return sa.select(AttentionItem).where(AttentionItem.subject_type == "system",
                                          AttentionItem.resolved_at.is_(None))


def _failed_members(within, now):
    """People Max refused for good: still waiting (``unaddable``), or sent the chat's join
    link and not in the chat yet (``invited_by_link``)."""
    q = (sa.select(GroupMember, Employee, SourceGroup)
         .join(Employee, Employee.id == GroupMember.employee_id)
         .join(SourceGroup, SourceGroup.id == GroupMember.group_id)
         .where(GroupMember.state.in_(states.STUCK)))
    return within(q, SourceGroup.org_id)


def _identity(within, now):
    """Links to review: a second account pressed a used invitation, or the names differ."""
    q = (sa.select(AttentionItem, Employee)
         .join(Employee, Employee.id == AttentionItem.subject_id)
         .where(AttentionItem.subject_type == "member",
                AttentionItem.code.in_((IDENTITY_CONFLICT, NAME_MISMATCH)),
                AttentionItem.resolved_at.is_(None)))
    return within(q, Employee.org_id)


def _chat_links(within, now):
    """Chats without a join link while people Max will not add wait for one."""
    q = (sa.select(AttentionItem, MaxChat, Organisation)
         .join(MaxChat, MaxChat.id == AttentionItem.subject_id)
         .outerjoin(Organisation, Organisation.id == MaxChat.org_id)
         .where(AttentionItem.subject_type == "chat", AttentionItem.code == CHAT_LINK_MISSING,
                AttentionItem.resolved_at.is_(None)))
    return within(q, MaxChat.org_id)


def _heads(within, now):
    q = (sa.select(Organisation, Employee)
         .outerjoin(Employee, Employee.email == Organisation.head_email)
         .where(Organisation.head_email.is_not(None), Employee.max_user_id.is_(None)))
    return within(q, Organisation.id)


def _chats(within, now):
    q = (sa.select(MaxChat, Organisation)
         .outerjoin(Organisation, Organisation.id == MaxChat.org_id)
         .where(sa.or_(MaxChat.status == "removed", missing_rights_condition()),
                # A freshly discovered chat is not a problem until someone links it.
                sa.or_(MaxChat.status != "discovered", MaxChat.bot_is_admin.is_(True))))
    return within(q, MaxChat.org_id)


def _flagged_groups(within, now):
    q = (sa.select(SourceGroup, Organisation)
         .join(Organisation, Organisation.id == SourceGroup.org_id)
         .where(SourceGroup.needs_attention.is_(True)))
    return within(q, SourceGroup.org_id)


def _overdue_steps(within, now):
    q = (sa.select(Step, SourceGroup, Organisation)
         .join(SourceGroup, SourceGroup.id == Step.group_id)
         .join(Organisation, Organisation.id == SourceGroup.org_id)
         .where(step_overdue_condition(now)))
    return within(q, SourceGroup.org_id)


def _overdue_waves(within, now):
    """Overdue waves holding groups the user may see (as the dashboard counts them)."""
    groups = within(sa.select(SourceGroup.wave_id).where(SourceGroup.wave_id.is_not(None)),
                    SourceGroup.org_id)
    return sa.select(Wave).where(wave_overdue_condition(now), Wave.id.in_(groups))


SECTIONS = [
    Section("system", _l("Max work is stopped"),
            _l("These problems stop the migration for everyone; an administrator fixes them. "
               "They clear by themselves once fixed."),
            _system, {"raised": AttentionItem.raised_at}, "raised", (AttentionItem.id,)),
    Section("failed", _l("Failed steps"),
            _l("Retry, skip with a reason or reset the step on the group page."),
            _steps_in("failed"), {"due": Step.due_at, "group": SourceGroup.name}, "due",
            (Step.id,)),
    Section("waiting", _l("Waiting for your confirmation"),
            _l("Manual steps: confirm them on the group page once done."),
            _steps_in("waiting"), {"due": Step.due_at, "group": SourceGroup.name}, "due",
            (Step.id,)),
    Section("members", _l("Members who could not be added"),
            _l("Max refused to add these people to the chat; the reason is shown. They are "
               "sent the chat's join link when it has one."),
            _failed_members, {"name": Employee.full_name, "group": SourceGroup.name}, "group",
            (GroupMember.group_id, GroupMember.employee_id)),
    Section("identity", _l("Max accounts to check"),
            _l("Someone else may have linked their Max account to these employees. Ask the "
               "employee; keep the link, or unlink and rebind it."),
            _identity, {"raised": AttentionItem.raised_at, "name": Employee.full_name},
            "raised", (AttentionItem.id,)),
    Section("chat_links", _l("Chats without a join link"),
            _l("People Max will not add get the chat's join link instead. Create the link in "
               "the Max chat's settings, then press «Recheck» on the chat page."),
            _chat_links, {"raised": AttentionItem.raised_at, "title": MaxChat.title}, "raised",
            (AttentionItem.id,)),
    Section("heads", _l("Heads of organisations not yet in Max"),
            _l("Heads must register in Max first; resend their invitation."),
            _heads, {"name": Organisation.name}, "name", (Organisation.id,)),
    Section("chats", _l("Chats where the bot lost its rights"),
            _l("Make the bot an administrator with the rights to add members, pin and write."),
            _chats, {"title": MaxChat.title}, "title", (MaxChat.id,)),
    Section("groups", _l("Groups flagged for attention"),
            _l("Something outside the plan happened to these groups."),
            _flagged_groups, {"name": SourceGroup.name}, "name", (SourceGroup.id,)),
    Section("overdue", _l("Overdue steps"),
            _l("Steps not finished within the grace period after they were due "
               "(paused ones aside)."),
            _overdue_steps, {"due": Step.due_at, "group": SourceGroup.name}, "due", (Step.id,)),
    Section("waves", _l("Overdue waves"),
            _l("The deadline has passed and the wave is not completed."),
            _overdue_waves, {"deadline": Wave.deadline, "name": Wave.name}, "deadline", (Wave.id,)),
]
SECTIONS += [
    Section("directive_lag", _l("Behind a directive's schedule"),
            _l("These organisations are behind a directive milestone's plan by more than the "
               "allowed lag; their heads are e-mailed once a week."),
            lambda within, now: open_escalations(None, within),
            {"raised": Escalation.raised_at, "name": Organisation.name}, "raised",
            (Escalation.id,)),
    Section("channels", _l("Public channels without a Max counterpart"),
            _l("Federal law 41-FZ: create the channel in Max and import its link (max_url)."),
            lambda within, now: without_max(None, within),
            {"name": Organisation.name, "title": PublicChannel.title}, "name",
            (PublicChannel.id,)),
]
SECTION_BY_KEY = {s.key: s for s in SECTIONS}


def count(query) -> int:
    return get_session().scalar(
        sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0
