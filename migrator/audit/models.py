"""Append-only, hash-chained audit events."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                          primary_key=True, autoincrement=True)
    )
    # Position in the hash chain: 1, 2, 3, ... without gaps.
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, unique=True, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor_type: str = Field(max_length=16)  # user | job | max | system
    actor_id: str | None = Field(default=None, max_length=200)  # user id, job name...
    actor_label: str | None = Field(default=None, max_length=300)  # e-mail for users
    action: str = Field(max_length=64)
    object_type: str | None = Field(default=None, max_length=32)
    object_id: str | None = Field(default=None, max_length=128)
    org_id: int | None = Field(default=None)  # no FK: the trail outlives rows
    summary: str = Field(default="{}", sa_type=sa.Text)  # canonical JSON, before/after
    request_id: str | None = Field(default=None, max_length=64)
    client_ip: str | None = Field(default=None, max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)

    # Keyset pages run "WHERE <filter> = x AND seq < cursor ORDER BY seq DESC LIMIT n": each
    # filter has an index ending in seq (migration 0007 adds the actor ones).
    __table_args__ = (
        sa.Index("ix_audit_object", "object_type", "object_id", "seq"),
        sa.Index("ix_audit_org_seq", "org_id", "seq"),
        sa.Index("ix_audit_action_seq", "action", "seq"),
        sa.Index("ix_audit_actor_id_seq", "actor_id", "seq"),
        sa.Index("ix_audit_actor_label_seq", "actor_label", "seq"),
    )


class AuditHead(SQLModel, table=True):
    """The chain's head (one row): locking it serialises appends across processes."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    last_seq: int = Field(default=0, sa_type=sa.BigInteger)
    last_hash: str = Field(default="0" * 64, max_length=64)
