"""Daily progress snapshots per organisation, for the progress-over-time charts."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow


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
