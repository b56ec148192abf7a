"""Planning waves: validation, the steps of each group, pause/resume/reschedule, previews."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlmodel import select

from migrator.audit.service import record
from migrator.auth.service import can_see_org_id, scope_org_ids_subquery, scoped
from migrator.db import get_session, utcnow
from migrator.engine import lifecycle
from migrator.engine.models import STEP_KINDS, GroupRollback, Step
from migrator.groups import states
from migrator.groups.models import PLATFORMS, GroupMember, SourceGroup
from migrator.groups.service import MEMBER_STATES, member_state_condition
from migrator.max.models import MaxChat
from migrator.org.filters import text_filter
from migrator.org.models import Organisation
from migrator.progress.service import missing_rights_condition
from migrator.waves.models import Wave
from migrator.waves.settings import get_setting

log = logging.getLogger("migrator.waves")

DATE_FIELDS = ("invite_at", "add_members_at", "announce_at", "cutover_at", "deadline")
# Which wave date each step kind is due at.
STEP_DATE = {
    "invite": "invite_at",
    "add_members": "add_members_at",
    "announce": "announce_at",
    "parallel_run": "announce_at",
    "cutover": "cutover_at",
}
OPEN_WAVE_STATUSES = ("planned", "active", "paused")
# Steps whose due time a reschedule may move (not started or only postponed).
MOVABLE_STEP_STATUSES = ("pending", "due", "paused")


class WaveError(Exception):
    """Bad input: ``details`` maps a field name to a message (shown inline / in the API)."""

    def __init__(self, details: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in details.items()))
        self.details = details


class GroupsNotFound(Exception):
    """Some group keys are unknown or outside the user's scope (404, never tell which)."""

    def __init__(self, keys: list[str]):
        super().__init__(", ".join(keys))
        self.keys = keys


class WriteForbidden(Exception):
    """The user may see but not change (403)."""


@dataclass
class GroupPreview:
    """A group in the planner's preview; the template words the flags."""

    group: SourceGroup
    org: Organisation
    chat: MaxChat | None

    @property
    def bot_removed(self) -> bool:
        return self.chat is not None and self.chat.status == "removed"

    @property
    def missing_rights(self) -> list[str]:
        if self.chat is None or self.bot_removed:
            return []
        return list(self.chat.missing_permissions)

    @property
    def ready(self) -> bool:
        return (self.chat is not None and not self.bot_removed and not self.missing_rights
                and bool(self.group.member_count))


def validate_dates(dates: dict[str, datetime | None]) -> dict[str, str]:
    """Errors for missing, naive or out-of-order dates (invite ≤ add ≤ announce ≤ cutover ≤
    deadline)."""
    errors: dict[str, str] = {}
    for name in DATE_FIELDS:
        value = dates.get(name)
        if value is None:
            errors[name] = str(_l("This date is required."))
        elif value.tzinfo is None:
            errors[name] = str(_l("The date needs a time zone offset."))
    if errors:
        return errors
    for earlier, later in zip(DATE_FIELDS, DATE_FIELDS[1:], strict=False):
        if dates[later] < dates[earlier]:
            errors[later] = str(_l("Must not be earlier than the previous step."))
    return errors


def default_dates(start: datetime) -> dict[str, datetime]:
    """The wave's dates from its start (invitations) and the region-wide offsets."""
    return {
        "invite_at": start,
        "add_members_at": start + timedelta(days=get_setting("offset_add_members_days")),
        "announce_at": start + timedelta(days=get_setting("offset_announce_days")),
        "cutover_at": start + timedelta(days=get_setting("offset_cutover_days")),
        "deadline": start + timedelta(days=get_setting("offset_deadline_days")),
    }


def groups_by_keys(keys: list[str], user) -> list[SourceGroup]:
    """The groups for ``keys`` (order kept, duplicates dropped); 404 semantics on scope."""
    wanted = list(dict.fromkeys(k.strip() for k in keys if k and k.strip()))
    rows = get_session().exec(select(SourceGroup).where(SourceGroup.key.in_(wanted))).all()
    found = {g.key: g for g in rows if can_see_org_id(g.org_id, user)}
    missing = [k for k in wanted if k not in found]
    if missing:
        raise GroupsNotFound(missing)
    return [found[k] for k in wanted]


# The planner's filters: the group's Max chat, and the state of its members (a group with at
# least one member in that state, :data:`migrator.groups.service.MEMBER_STATES`).
PLANNER_CHAT_STATES = ("ready", "no_rights", "no_chat", "attention")


def planner_query(user, org: Organisation | None = None, platforms=(), chat_state: str = "",
                  member_state: str = "", text: str = ""):
    """``(SourceGroup, Organisation, MaxChat | None)`` rows of the groups the planner offers:
    visible to ``user``, not in an open wave, in ``org``'s subtree, on ``platforms``, in
    ``chat_state`` (:data:`PLANNER_CHAT_STATES`), with a member in ``member_state``, whose
    name or key contains ``text``. Unknown filter values are ignored."""
    q = (sa.select(SourceGroup, Organisation, MaxChat)
         .join(Organisation, Organisation.id == SourceGroup.org_id)
         .outerjoin(MaxChat, MaxChat.id == SourceGroup.max_chat_id))
    busy = sa.select(Wave.id).where(Wave.status.in_(OPEN_WAVE_STATUSES))
    q = q.where(sa.or_(SourceGroup.wave_id.is_(None), SourceGroup.wave_id.not_in(busy)))
    if org is not None:
        q = q.where(Organisation.path.startswith(org.path))
    platforms = [p for p in platforms or () if p in PLATFORMS]
    if platforms:
        q = q.where(SourceGroup.platform.in_(platforms))
    if chat_state == "ready":
        q = q.where(SourceGroup.max_chat_id.is_not(None), MaxChat.status != "removed",
                    sa.not_(missing_rights_condition()))
    elif chat_state == "no_rights":
        q = q.where(sa.or_(MaxChat.status == "removed", missing_rights_condition()))
    elif chat_state == "no_chat":
        q = q.where(SourceGroup.max_chat_id.is_(None))
    elif chat_state == "attention":
        q = q.where(SourceGroup.needs_attention.is_(True))
    if member_state in MEMBER_STATES:
        q = q.where(sa.exists().where(GroupMember.group_id == SourceGroup.id,
                                      member_state_condition(member_state)))
    text = (text or "").strip()
    if text:
        q = q.where(text_filter(text, SourceGroup.name, SourceGroup.key))
    return scoped(q, SourceGroup.org_id, user)


def preview_groups(rows) -> list[GroupPreview]:
    """What each group of ``rows`` (``(group, organisation, chat)``, as :func:`planner_query`
    gives them) still lacks before its steps can run: flags, not errors."""
    return [GroupPreview(group, org, chat) for group, org, chat in rows]


def picked_rows(keys: list[str], user, limit: int | None = None) -> list:
    """``(group, organisation, chat)`` of the groups with ``keys`` that ``user`` may see, in
    the order of ``keys`` (at most ``limit``)."""
    wanted = list(dict.fromkeys(keys))[:limit] if limit else list(dict.fromkeys(keys))
    if not wanted:
        return []
    q = (sa.select(SourceGroup, Organisation, MaxChat)
         .join(Organisation, Organisation.id == SourceGroup.org_id)
         .outerjoin(MaxChat, MaxChat.id == SourceGroup.max_chat_id)
         .where(SourceGroup.key.in_(wanted)))
    found = {g.key: (g, o, c) for g, o, c in get_session().execute(scoped(q, SourceGroup.org_id,
                                                                         user)).all()}
    return [found[k] for k in wanted if k in found]


def _busy_groups(groups: list[SourceGroup]) -> list[str]:
    ids = [g.wave_id for g in groups if g.wave_id]
    if not ids:
        return []
    open_ids = set(get_session().exec(
        select(Wave.id).where(Wave.id.in_(ids), Wave.status.in_(OPEN_WAVE_STATUSES))).all())
    return [g.key for g in groups if g.wave_id in open_ids]


def _rolling_back(groups: list[SourceGroup]) -> list[str]:
    """Keys of the groups whose move is being undone (a rollback pending or running)."""
    ids = set(get_session().exec(select(GroupRollback.open_group_id).where(
        GroupRollback.open_group_id.in_([g.id for g in groups]))).all())
    return [g.key for g in groups if g.id in ids]


def _common_org_id(groups: list[SourceGroup]) -> int | None:
    """The deepest organisation whose subtree holds every group (the wave's owner)."""
    session = get_session()
    paths = [session.get(Organisation, g.org_id).path for g in groups]
    parts = [p.strip("/").split("/") for p in paths]
    common = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return int(common[-1]) if common else None


def create_wave(name: str, group_keys: list[str], invite_at: datetime | None,
                add_members_at: datetime | None, announce_at: datetime | None,
                cutover_at: datetime | None, deadline: datetime | None, user) -> Wave:
    """Plan a wave and the five steps of each group; not committed.

    Raises :class:`WriteForbidden` (403), :class:`GroupsNotFound` (404) or
    :class:`WaveError` with per-field details (400).
    """
    if user.role not in ("admin", "coordinator"):
        raise WriteForbidden()
    dates = dict(zip(DATE_FIELDS, (invite_at, add_members_at, announce_at, cutover_at,
                                   deadline), strict=True))
    errors = validate_dates(dates)
    name = (name or "").strip()
    if not name:
        errors["name"] = str(_l("A name is required."))
    elif len(name) > 300:
        errors["name"] = str(_l("At most 300 characters."))
    if not group_keys:
        errors["group_keys"] = str(_l("Choose at least one group."))
    if errors:
        raise WaveError(errors)
    dates = {k: v.astimezone(UTC) for k, v in dates.items()}
    groups = groups_by_keys(group_keys, user)
    busy = _busy_groups(groups)
    if busy:
        raise WaveError({"group_keys": str(_l("Already in an open wave: %(keys)s",
                                              keys=", ".join(busy)))})
    undoing = _rolling_back(groups)
    if undoing:
        raise WaveError({"group_keys": str(_l("The move of these groups is being undone: "
                                              "%(keys)s", keys=", ".join(undoing)))})
    session = get_session()
    wave = Wave(name=name, org_id=_common_org_id(groups), status="planned",
                created_by_id=user.id, **dates)
    session.add(wave)
    session.flush()
    now = utcnow()
    for group in groups:
        group.wave_id = wave.id
        group.updated_at = now
        session.add(group)
        existing = {s.kind: s for s in session.exec(
            select(Step).where(Step.group_id == group.id)).all()}
        for kind in STEP_KINDS:
            due = dates[STEP_DATE[kind]]
            step = existing.get(kind) or Step(group_id=group.id, kind=kind, wave_id=wave.id,
                                              due_at=due, next_attempt_at=due)
            _reset_step(step, wave.id, due, user.email)
            session.add(step)
    # a group whose earlier move was undone: the people the rollback took out come back
    states.readmit_rolled_back([g.id for g in groups], now=now)
    record("wave.create", object_type="wave", object_id=wave.id, org_id=wave.org_id,
           summary={"name": name, "groups": [g.key for g in groups],
                    **{k: v.isoformat() for k, v in dates.items()}})
    log.info("wave %r planned with %d groups by %s", wave, len(groups), user.email)
    return wave


@lifecycle.step_moved.connect
def _activate_wave(step: Step, before: str, after: str) -> None:
    """A planned wave becomes active once one of its steps has run."""
    if before != "running" or after not in ("due", "succeeded", "waiting"):
        return
    wave = get_session().get(Wave, step.wave_id)
    if wave is not None and wave.status == "planned":
        wave.status = "active"
        wave.updated_at = utcnow()
        get_session().add(wave)
        record("wave.activate", object_type="wave", object_id=wave.id, org_id=wave.org_id,
               summary={"before": "planned", "after": "active"})


def _reset_step(step: Step, wave_id: int, due: datetime, changed_by: str) -> None:
    """A fresh step (a group planned again after a cancelled wave reuses its rows)."""
    step.wave_id = wave_id
    lifecycle.move(step, "pending")
    step.due_at = step.next_attempt_at = due
    step.attempts = 0
    for name in ("last_error", "started_at", "finished_at", "claimed_by", "claimed_until",
                 "confirmed_at", "confirmed_by_id", "note", "send_intent_at", "message_id",
                 "pinned_at", "override_at", "override_reason", "escalated_at"):
        setattr(step, name, None)
    step.changed_by = changed_by
    step.updated_at = utcnow()


# --- who may see and change a wave ----------------------------------------------------------
# A wave may hold groups of organisations with no common ancestor (``org_id`` NULL), so
# access follows its groups, never ``org_id``: a user sees a wave that holds one of their
# groups, and may change it only when their scope covers every group in it.


def _wave_groups(wave_id: int):
    """A SELECT of the groups in the wave (through their steps)."""
    return (sa.select(SourceGroup.id).join(Step, Step.group_id == SourceGroup.id)
            .where(Step.wave_id == wave_id))


def visible_waves_clause(user):
    """A WHERE clause for the waves ``user`` sees, or ``None`` for every wave."""
    sub = scope_org_ids_subquery(user)
    if sub is None:
        return None
    holding = (select(Step.wave_id).join(SourceGroup, SourceGroup.id == Step.group_id)
               .where(SourceGroup.org_id.in_(sub)))
    return Wave.id.in_(holding)


def can_see_wave(wave: Wave, user) -> bool:
    sub = scope_org_ids_subquery(user)
    if sub is None:
        return True
    mine = _wave_groups(wave.id).where(SourceGroup.org_id.in_(sub))
    return bool(get_session().scalar(sa.select(mine.exists())))


def can_change_wave(wave: Wave, user) -> bool:
    """Admins; a coordinator whose scope covers every group of the wave."""
    if user.role not in ("admin", "coordinator"):
        return False
    sub = scope_org_ids_subquery(user)
    if sub is None:
        return True
    outside = _wave_groups(wave.id).where(SourceGroup.org_id.not_in(sub))
    return not get_session().scalar(sa.select(outside.exists()))


def wave_steps(wave: Wave, group_ids=None) -> list[Step]:
    """The wave's steps, or only those of ``group_ids``."""
    q = select(Step).where(Step.wave_id == wave.id)
    if group_ids is not None:
        q = q.where(Step.group_id.in_(list(group_ids)))
    return list(get_session().exec(q.order_by(Step.group_id, Step.id)).all())


def wave_step_badges(wave: Wave, group_ids) -> list:
    """``(group_id, kind, status, due_at)`` rows of the steps of ``group_ids`` in the wave:
    what the wave page shows of each step, read as plain columns."""
    q = (sa.select(Step.group_id, Step.kind, Step.status, Step.due_at)
         .where(Step.wave_id == wave.id, Step.group_id.in_(list(group_ids)))
         .order_by(Step.group_id, Step.id))
    return list(get_session().execute(q).all())


# A group's state in its wave, from its steps: the first that applies, in this order.
GROUP_STATES = ("failed", "waiting", "in_progress", "planned", "done")


def group_state_query(wave: Wave):
    """``(group_id, state)`` of every group with steps in ``wave``: one grouped scan of the
    wave's steps (index ``(wave_id, group_id, status)``)."""
    def n(*statuses):
        return sa.func.sum(sa.case((Step.status.in_(statuses), 1), else_=0))

    state = sa.case(
        (n("failed") > 0, "failed"),
        (n("waiting") > 0, "waiting"),
        (n("succeeded", "skipped") == sa.func.count(), "done"),
        (n("succeeded", "skipped", "running") > 0, "in_progress"),
        else_="planned")
    return (sa.select(Step.group_id.label("group_id"), state.label("state"))
            .where(Step.wave_id == wave.id).group_by(Step.group_id))


def wave_figures(wave: Wave, visible_groups) -> dict[str, int]:
    """How many of the wave's groups (among ``visible_groups``, a SELECT of ids, or all when
    ``None``) are in each state, plus ``total``: one query."""
    states = group_state_query(wave)
    if visible_groups is not None:
        states = states.where(Step.group_id.in_(visible_groups))
    sub = states.subquery()
    counts = dict(get_session().execute(
        sa.select(sub.c.state, sa.func.count()).group_by(sub.c.state)).all())
    figures = {state: int(counts.get(state, 0)) for state in GROUP_STATES}
    figures["total"] = sum(figures.values())
    return figures


def pause_wave(wave: Wave, user_label: str) -> int:
    """Stop the runner from starting the wave's steps; returns how many steps were paused."""
    if wave.status not in ("planned", "active"):
        raise WaveError({"status": str(_l("Only a planned or active wave can be paused."))})
    before = wave.status
    wave.status = "paused"
    n = _set_status(wave, ("pending", "due"), "paused", user_label)
    _touch(wave)
    record("wave.pause", object_type="wave", object_id=wave.id, org_id=wave.org_id,
           summary={"before": before, "after": "paused", "steps": n})
    return n


def resume_wave(wave: Wave, user_label: str) -> int:
    if wave.status != "paused":
        raise WaveError({"status": str(_l("The wave is not paused."))})
    wave.status = "active"
    session = get_session()
    now = utcnow()
    steps = session.exec(select(Step).where(Step.wave_id == wave.id,
                                            Step.status == "paused")).all()
    for step in steps:
        lifecycle.move(step, "due" if step.next_attempt_at <= now else "pending")
        step.changed_by = user_label
        step.updated_at = now
        session.add(step)
    _touch(wave)
    record("wave.resume", object_type="wave", object_id=wave.id, org_id=wave.org_id,
           summary={"before": "paused", "after": "active", "steps": len(steps)})
    return len(steps)


def reschedule_wave(wave: Wave, dates: dict[str, datetime | None], user_label: str) -> int:
    """New dates for the wave; moves the due times of steps not yet started."""
    errors = validate_dates(dates)
    if errors:
        raise WaveError(errors)
    if wave.status in ("completed", "cancelled"):
        raise WaveError({"status": str(_l("A finished wave cannot be rescheduled."))})
    dates = {k: v.astimezone(UTC) for k, v in dates.items()}
    before = {k: getattr(wave, k).isoformat() for k in DATE_FIELDS}
    for k in DATE_FIELDS:
        setattr(wave, k, dates[k])
    session = get_session()
    now = utcnow()
    moved = 0
    for step in session.exec(select(Step).where(Step.wave_id == wave.id,
                                                Step.status.in_(MOVABLE_STEP_STATUSES))).all():
        due = dates[STEP_DATE[step.kind]]
        if step.attempts == 0 and step.started_at is None:
            step.due_at = step.next_attempt_at = due
        else:  # a step that ran already (delta sync, backoff): only its due time moves
            step.due_at = due
        if step.status != "paused":
            lifecycle.move(step, "due" if step.next_attempt_at <= now else "pending")
        step.changed_by = user_label
        step.updated_at = now
        session.add(step)
        moved += 1
    _touch(wave)
    record("wave.reschedule", object_type="wave", object_id=wave.id, org_id=wave.org_id,
           summary={"before": before, "after": {k: dates[k].isoformat() for k in DATE_FIELDS},
                    "steps": moved})
    return moved


def _set_status(wave: Wave, from_statuses, to_status: str, user_label: str) -> int:
    session = get_session()
    steps = session.exec(select(Step).where(Step.wave_id == wave.id,
                                            Step.status.in_(from_statuses))).all()
    now = utcnow()
    for step in steps:
        lifecycle.move(step, to_status)
        step.changed_by = user_label
        step.updated_at = now
        session.add(step)
    return len(steps)


def _touch(wave: Wave) -> None:
    wave.updated_at = utcnow()
    get_session().add(wave)


def wave_to_json(wave: Wave, with_groups: bool = True) -> dict:
    data = {"id": wave.id, "name": wave.name, "status": wave.status,
            **{k: getattr(wave, k).isoformat() for k in DATE_FIELDS}}
    if with_groups:
        session = get_session()
        groups = session.exec(select(SourceGroup).where(SourceGroup.wave_id == wave.id)
                              .order_by(SourceGroup.key)).all()
        data["group_keys"] = [g.key for g in groups]
        data["steps"] = len(wave_steps(wave))
    return data
