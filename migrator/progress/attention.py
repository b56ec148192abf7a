"""What needs a coordinator now: one section per kind of problem, each restricted to the
user's scope.

A section says which rows it lists and what a row shows, apart:

- ``rows(scope, now)``: a narrow SELECT of the listed rows' keys and their default sort value,
  with the conditions and the scope (:class:`PageScope`, read once for the page). It joins
  only what the conditions need, so the database reads indexes, not rows.
- ``show()``: the SELECT of what a row shows (its objects, joined by their keys).

The overview (:func:`overview`) reads every section's total and first keys in one query, then
what those few rows show. The full list of a section (:meth:`Section.query`) shows the rows
whose keys are in ``rows``."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from migrator.attention.models import AttentionItem
from migrator.auth.service import scope_org_ids_subquery
from migrator.db import get_session
from migrator.directives.channels import has_max
from migrator.directives.models import Escalation, PublicChannel
from migrator.directives.service import escalation_open, escalations_shown
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
    rows: object  # (scope, now) -> SELECT of the rows' keys, then their default sort value
    show: object  # () -> SELECT of what a row shows
    keys: tuple  # the columns of ``show`` that ``rows``' keys are (a primary key)
    sorts: dict  # the full list's sort keys (columns of ``show``)
    default_sort: str

    def query(self, user, now):
        """What the section's rows in ``user``'s scope show (the full list, to be ordered)."""
        return self.shown(self.rows(PageScope(user), now))

    def shown(self, rows):
        """``show`` of the rows of ``rows``."""
        n = len(self.keys)
        ids = rows.with_only_columns(*list(rows.selected_columns)[:n])
        target = self.keys[0] if n == 1 else sa.tuple_(*self.keys)
        return self.show().where(target.in_(ids))

    def total(self, user, now):
        """A COUNT of the section's rows in ``user``'s scope."""
        rows = self.rows(PageScope(user), now)
        keys = rows.with_only_columns(*list(rows.selected_columns)[:len(self.keys)])
        return sa.select(sa.func.count()).select_from(keys.order_by(None).subquery())


class PageScope:
    """The user's scope, read once for the page: ``scope(query, org_id_column)`` keeps the
    rows whose organisation is in it. The ids of its organisations and of their groups are
    common table expressions, so a statement reads them once however many sections use
    them; both are ``None`` when the user sees everything."""

    def __init__(self, user) -> None:
        orgs = scope_org_ids_subquery(user)
        self.org_ids = None if orgs is None else sa.select(orgs.cte("scope_orgs").c.id)
        self.group_ids = (None if orgs is None else
                          self(sa.select(SourceGroup.id), SourceGroup.org_id).cte("scope_groups"))

    def __call__(self, query, org_id_column):
        return query if self.org_ids is None else query.where(org_id_column.in_(self.org_ids))


def _groups_in(scope: PageScope, group_id_column):
    """SQL: the group is in the scope (nothing to check when the scope is everything)."""
    if scope.group_ids is None:
        return sa.true()
    return group_id_column.in_(sa.select(scope.group_ids.c.id))


def _steps_in(status: str):
    """The steps in ``status`` (each with its group and organisation)."""

    def rows(scope, now):
        return (sa.select(Step.id, Step.due_at)
                .where(Step.status == status, _groups_in(scope, Step.group_id)))

    return rows


def _show_steps():
    return (sa.select(Step, SourceGroup, Organisation)
            .join(SourceGroup, SourceGroup.id == Step.group_id)
            .join(Organisation, Organisation.id == SourceGroup.org_id))


def _system(scope, now):
    """Open system-wide items (the bot token refused, the webhook subscription lost): why
    nothing moves, so everyone signed in sees them."""
    return sa.select(AttentionItem.id, AttentionItem.raised_at).where(
        AttentionItem.subject_type == "system", AttentionItem.resolved_at.is_(None))


def _failed_members(scope, now):
    """People Max refused for good: still waiting (``unaddable``), or sent the chat's join
    link and not in the chat yet (``invited_by_link``)."""
    # The group's name is read per listed membership (not joined), so the database starts
    # from the few memberships in these states, whatever its statistics say.
    group_name = (sa.select(SourceGroup.name).where(SourceGroup.id == GroupMember.group_id)
                  .scalar_subquery())
    return (sa.select(GroupMember.group_id, GroupMember.employee_id, group_name.label("group"))
            .where(GroupMember.state.in_(states.STUCK), _groups_in(scope, GroupMember.group_id)))


def _show_members():
    return (sa.select(GroupMember, Employee, SourceGroup)
            .join(Employee, Employee.id == GroupMember.employee_id)
            .join(SourceGroup, SourceGroup.id == GroupMember.group_id))


def _identity(scope, now):
    """Links to review: a second account pressed a used invitation, or the names differ."""
    q = (sa.select(AttentionItem.id, AttentionItem.raised_at)
         .join(Employee, Employee.id == AttentionItem.subject_id)
         .where(AttentionItem.subject_type == "member",
                AttentionItem.code.in_((IDENTITY_CONFLICT, NAME_MISMATCH)),
                AttentionItem.resolved_at.is_(None)))
    return scope(q, Employee.org_id)


def _chat_links(scope, now):
    """Chats without a join link while people Max will not add wait for one."""
    q = (sa.select(AttentionItem.id, AttentionItem.raised_at)
         .join(MaxChat, MaxChat.id == AttentionItem.subject_id)
         .where(AttentionItem.subject_type == "chat", AttentionItem.code == CHAT_LINK_MISSING,
                AttentionItem.resolved_at.is_(None)))
    return scope(q, MaxChat.org_id)


def _heads(scope, now):
    """Heads not in the employee list, or whose employee has no Max account."""
    # The head's account is read per organisation (an address is at most one employee's),
    # so every database probes the e-mail index rather than reading all the employees.
    account = (sa.select(Employee.max_user_id).where(Employee.email == Organisation.head_email)
               .scalar_subquery())
    q = (sa.select(Organisation.id, Organisation.name)
         .where(Organisation.head_email.is_not(None), account.is_(None)))
    return scope(q, Organisation.id)


def _chats(scope, now):
    q = (sa.select(MaxChat.id, MaxChat.title)
         .where(sa.or_(MaxChat.status == "removed", missing_rights_condition()),
                # A freshly discovered chat is not a problem until someone links it.
                sa.or_(MaxChat.status != "discovered", MaxChat.bot_is_admin.is_(True))))
    return scope(q, MaxChat.org_id)


def _flagged_groups(scope, now):
    q = (sa.select(SourceGroup.id, SourceGroup.name)
         .where(SourceGroup.needs_attention == sa.true()))  # "= true": an index reads it
    return scope(q, SourceGroup.org_id)


def _overdue_steps(scope, now):
    return (sa.select(Step.id, Step.due_at)
            .where(step_overdue_condition(now), _groups_in(scope, Step.group_id)))


def _overdue_waves(scope, now):
    """Overdue waves holding groups the user may see (as the dashboard counts them)."""
    groups = scope(sa.select(SourceGroup.id).where(SourceGroup.wave_id == Wave.id),
                   SourceGroup.org_id)
    return sa.select(Wave.id, Wave.deadline).where(wave_overdue_condition(now), groups.exists())


def _escalations(scope, now):
    """Open escalations of directive milestones (the organisations behind the plan)."""
    q = sa.select(Escalation.id, Escalation.raised_at).where(escalation_open())
    return scope(q, Escalation.org_id)


def _channels(scope, now):
    """Public channels with no Max counterpart."""
    q = (sa.select(PublicChannel.id, Organisation.name)
         .join(Organisation, Organisation.id == PublicChannel.org_id)
         .where(sa.not_(has_max())))
    return scope(q, PublicChannel.org_id)


SECTIONS = [
    Section("system", _l("Max work is stopped"),
            _l("These problems stop the migration for everyone; an administrator fixes them. "
               "They clear by themselves once fixed."),
            _system, lambda: sa.select(AttentionItem), (AttentionItem.id,),
            {"raised": AttentionItem.raised_at}, "raised"),
    Section("failed", _l("Failed steps"),
            _l("Retry, skip with a reason or reset the step on the group page."),
            _steps_in("failed"), _show_steps, (Step.id,),
            {"due": Step.due_at, "group": SourceGroup.name}, "due"),
    Section("waiting", _l("Waiting for your confirmation"),
            _l("Manual steps: confirm them on the group page once done."),
            _steps_in("waiting"), _show_steps, (Step.id,),
            {"due": Step.due_at, "group": SourceGroup.name}, "due"),
    Section("members", _l("Members who could not be added"),
            _l("Max refused to add these people to the chat; the reason is shown. They are "
               "sent the chat's join link when it has one."),
            _failed_members, _show_members, (GroupMember.group_id, GroupMember.employee_id),
            {"name": Employee.full_name, "group": SourceGroup.name}, "group"),
    Section("identity", _l("Max accounts to check"),
            _l("Someone else may have linked their Max account to these employees. Ask the "
               "employee; keep the link, or unlink and rebind it."),
            _identity,
            lambda: (sa.select(AttentionItem, Employee)
                     .join(Employee, Employee.id == AttentionItem.subject_id)),
            (AttentionItem.id,),
            {"raised": AttentionItem.raised_at, "name": Employee.full_name}, "raised"),
    Section("chat_links", _l("Chats without a join link"),
            _l("People Max will not add get the chat's join link instead. Create the link in "
               "the Max chat's settings, then press «Recheck» on the chat page."),
            _chat_links,
            lambda: (sa.select(AttentionItem, MaxChat, Organisation)
                     .join(MaxChat, MaxChat.id == AttentionItem.subject_id)
                     .outerjoin(Organisation, Organisation.id == MaxChat.org_id)),
            (AttentionItem.id,),
            {"raised": AttentionItem.raised_at, "title": MaxChat.title}, "raised"),
    Section("heads", _l("Heads of organisations not yet in Max"),
            _l("Heads must register in Max first; resend their invitation."),
            _heads,
            lambda: (sa.select(Organisation, Employee)
                     .outerjoin(Employee, Employee.email == Organisation.head_email)),
            (Organisation.id,), {"name": Organisation.name}, "name"),
    Section("chats", _l("Chats where the bot lost its rights"),
            _l("Make the bot an administrator with the rights to add members, pin and write."),
            _chats,
            lambda: (sa.select(MaxChat, Organisation)
                     .outerjoin(Organisation, Organisation.id == MaxChat.org_id)),
            (MaxChat.id,), {"title": MaxChat.title}, "title"),
    Section("groups", _l("Groups flagged for attention"),
            _l("Something outside the plan happened to these groups."),
            _flagged_groups,
            lambda: (sa.select(SourceGroup, Organisation)
                     .join(Organisation, Organisation.id == SourceGroup.org_id)),
            (SourceGroup.id,), {"name": SourceGroup.name}, "name"),
    Section("overdue", _l("Overdue steps"),
            _l("Steps not finished within the grace period after they were due "
               "(paused ones aside)."),
            _overdue_steps, _show_steps, (Step.id,),
            {"due": Step.due_at, "group": SourceGroup.name}, "due"),
    Section("waves", _l("Overdue waves"),
            _l("The deadline has passed and the wave is not completed."),
            _overdue_waves, lambda: sa.select(Wave), (Wave.id,),
            {"deadline": Wave.deadline, "name": Wave.name}, "deadline"),
    Section("directive_lag", _l("Behind a directive's schedule"),
            _l("These organisations are behind a directive milestone's plan by more than the "
               "allowed lag; their heads are e-mailed once a week."),
            _escalations, escalations_shown, (Escalation.id,),
            {"raised": Escalation.raised_at, "name": Organisation.name}, "raised"),
    Section("channels", _l("Public channels without a Max counterpart"),
            _l("Federal law 41-FZ: create the channel in Max and import its link (max_url)."),
            _channels,
            lambda: (sa.select(PublicChannel, Organisation)
                     .join(Organisation, Organisation.id == PublicChannel.org_id)),
            (PublicChannel.id,), {"name": Organisation.name, "title": PublicChannel.title},
            "name"),
]

SECTION_BY_KEY = {s.key: s for s in SECTIONS}


MAX_KEYS = 2  # a membership's key is (group, employee); every other row has one id


def overview(user, now, cap: int) -> list[tuple[Section, list, int]]:
    """``(section, what its first cap rows show, its total)`` for every section.

    One query reads every section's total and the keys of its first ``cap`` rows in the
    default order (a window count over each section's narrow rows and its first rows, all
    in one UNION ALL); then one query per section with rows reads what those rows show. The
    scope is read once."""
    scope = PageScope(user)
    session = get_session()
    firsts = []
    for i, section in enumerate(SECTIONS):
        rows = section.rows(scope, now)
        n = len(section.keys)
        cols = list(rows.selected_columns)
        # The first rows by a LIMIT (a top-N sort), ranked again outside: only they are.
        first = (rows.add_columns(sa.func.count().over().label("total"))
                 .order_by(cols[n], *cols[:n]).limit(cap).subquery(f"s{i}"))
        c = list(first.c)
        missing = [sa.cast(sa.null(), sa.Integer)] * (MAX_KEYS - n)
        firsts.append(sa.select(sa.literal(i).label("section"), *c[:n], *missing, first.c.total,
                                sa.func.row_number().over(order_by=(c[n], *c[:n]))))
    keys: dict[int, list] = {}
    totals: dict[int, int] = {}
    for i, *key, total, _rank in sorted(session.execute(sa.union_all(*firsts)).all(),
                                        key=lambda r: (r[0], r[-1])):
        keys.setdefault(i, []).append(tuple(key[:len(SECTIONS[i].keys)]))
        totals[i] = total
    blocks = []
    for i, section in enumerate(SECTIONS):
        blocks.append((section, _shown(section, keys[i]) if i in keys else [], totals.get(i, 0)))
    return blocks


def _shown(section: Section, keys: list[tuple]) -> list:
    """What the rows with ``keys`` show, in the order of ``keys``."""
    n = len(section.keys)
    # Each key column in its values (an index reads them; a list of row values would be a
    # scan on SQLite): a membership of one listed group and another listed employee may
    # come too, and is left out below.
    q = section.show().add_columns(*section.keys).where(
        *[column.in_(sorted({k[j] for k in keys})) for j, column in enumerate(section.keys)])
    found = {}
    for row in get_session().execute(q):
        shown = tuple(row[:-n])
        found[tuple(row[-n:])] = shown[0] if len(shown) == 1 else shown
    return [found[k] for k in keys if k in found]
