"""An attention item: one open (or resolved) reason why a person must look at something."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow

SUBJECTS = ("system", "chat", "group", "member", "org")


class AttentionItem(SQLModel, table=True):
    """Raised by the event that causes it, resolved by the event that fixes it.

    ``open_key`` ("<subject_type>:<subject_id>:<code>") is set while the item is open and
    cleared when it is resolved, so one subject has at most one open item per reason and
    raising it twice is harmless."""

    __tablename__ = "attention_item"

    id: int | None = Field(default=None, primary_key=True)
    subject_type: str = Field(max_length=16)
    # group, chat (max_chat.id), org: that row's id; member: the employee's id, with
    # ``group_id`` naming the membership's group; system: 0
    subject_id: int = Field(sa_type=sa.BigInteger)
    code: str = Field(max_length=40)
    params: str | None = Field(default=None, sa_type=sa.Text)  # JSON
    org_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    group_id: int | None = Field(default=None, foreign_key="source_group.id")
    raised_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    raised_by: str | None = Field(default=None, max_length=200)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: str | None = Field(default=None, max_length=200)
    open_key: str | None = Field(default=None, max_length=120, unique=True)

    __table_args__ = (
        sa.Index("ix_attention_open", "resolved_at", "code"),
        sa.Index("ix_attention_group", "group_id", "resolved_at"),
        sa.CheckConstraint("subject_type in ('system','chat','group','member','org')",
                           name="ck_attention_subject"),
    )
