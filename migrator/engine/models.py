"""Process heartbeats for the scheduler and runners."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow


class Heartbeat(SQLModel, table=True):
    __tablename__ = "heartbeat"

    name: str = Field(primary_key=True, max_length=100)  # "scheduler", "runner:<host>:<pid>"
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    info: str | None = Field(default=None, max_length=500)
