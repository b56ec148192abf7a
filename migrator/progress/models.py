"""Daily progress snapshots per organisation, for the progress-over-time charts."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow
from migrator.engine.models import Step
from migrator.groups.models import GroupMember


class ProgressSnapshot(SQLModel, table=True):
    __tablename__ = "progress_snapshot"

    org_id: int = Field(foreign_key="organisation.id", primary_key=True)
    day: date = Field(primary_key=True)
    # Figures for the organisation's whole subtree.
    employees: int = 0
    linked: int = 0
    groups_total: int = 0
    groups_done: int = 0
    members_total: int = 0
    members_in_chat: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (sa.Index("ix_snapshot_day", "day"),)


# Indexes on other features' tables that the progress figures and the attention list rely
# on (migrations 0008, 0037, 0038 and 0040): memberships per state with their group and
# employee (the members Max refused, from the index alone); groups per step kind and status
# (with the group, so the cut-over groups are counted from the index alone); overdue steps
# (status, due time); a wave's groups and their states.
def _index_other_tables() -> None:
    gm, step = GroupMember.__table__, Step.__table__
    if "ix_group_member_state_group_employee" not in {i.name for i in gm.indexes}:
        sa.Index("ix_group_member_state_group_employee", gm.c.state, gm.c.group_id,
                 gm.c.employee_id)
    if "ix_group_member_due" not in {i.name for i in gm.indexes}:
        sa.Index("ix_group_member_due", gm.c.state, gm.c.next_attempt_at)
    if "ix_step_kind_status_group" not in {i.name for i in step.indexes}:
        sa.Index("ix_step_kind_status_group", step.c.kind, step.c.status, step.c.group_id)
    if "ix_step_status_due" not in {i.name for i in step.indexes}:
        sa.Index("ix_step_status_due", step.c.status, step.c.due_at)
    if "ix_step_wave_group_status" not in {i.name for i in step.indexes}:
        sa.Index("ix_step_wave_group_status", step.c.wave_id, step.c.group_id, step.c.status)


_index_other_tables()
