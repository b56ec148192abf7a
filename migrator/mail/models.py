"""The e-mail outbox: a row per message, written with the decision to send it."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_message"

    id: int | None = Field(default=None, primary_key=True)
    # e.g. "invite:<group>:<employee>", "reminder:<group>:<employee>:<n>" — the same
    # decision never makes two messages.
    idem_key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=32, index=True)  # invite, reminder, report, digest, escalation
    to_addr: str = Field(max_length=320, index=True)
    subject: str = Field(max_length=500)
    body_text: str = Field(sa_type=sa.Text)
    body_html: str | None = Field(default=None, sa_type=sa.Text)
    org_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    # pending | sending | sent | failed
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    # When due; while ``sending``, the end of the sender's lease (then it is sent again).
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=1000)
    # Message-ID header, fixed at creation so a resend after a crash is recognisable.
    message_id: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (sa.Index("ix_outbox_status_next", "status", "next_attempt_at"),)
