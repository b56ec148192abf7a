"""Organisations: the region's tree (region → department/municipality → subordinate)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow


class Organisation(SQLModel, table=True):
    __tablename__ = "organisation"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=500)
    parent_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    # Materialised path of ids, e.g. "/1/5/17/": a scope check is one prefix comparison.
    path: str = Field(default="/", max_length=1000, index=True)
    depth: int = 0
    head_email: str | None = Field(default=None, max_length=320)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    def __repr__(self) -> str:
        return f"<Organisation {self.code}>"


