"""Waves of groups and the region-wide settings (the steps of each group: engine.models)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow

WAVE_STATUSES = ("planned", "active", "paused", "completed", "cancelled")


class Wave(SQLModel, table=True):
    __tablename__ = "wave"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=300)
    # The organisation whose coordinators own the wave (None: region-wide, admins).
    org_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    status: str = Field(default="planned", max_length=16, index=True)
    invite_at: datetime = Field(sa_type=UTCDateTime)
    add_members_at: datetime = Field(sa_type=UTCDateTime)
    announce_at: datetime = Field(sa_type=UTCDateTime)
    cutover_at: datetime = Field(sa_type=UTCDateTime)
    deadline: datetime = Field(sa_type=UTCDateTime)
    created_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    def __repr__(self) -> str:
        return f"<Wave {self.id} {self.name!r}>"


class Setting(SQLModel, table=True):
    """Region-wide settings set by an admin (step offsets, thresholds, footer wording)."""

    __tablename__ = "setting"

    key: str = Field(primary_key=True, max_length=100)
    value: str = Field(sa_type=sa.Text)  # JSON
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
