"""Employees (e-mail is the identity) and their invitation tokens."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow


class Employee(SQLModel, table=True):
    __tablename__ = "employee"

    id: int | None = Field(default=None, primary_key=True)
    # Always stored lower-cased; the identity of a person across imports.
    email: str = Field(max_length=320, unique=True, index=True)
    full_name: str = Field(max_length=300)
    position: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=64)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    # Max user id, once the person pressed Start on their personal deep link. Not unique:
    # one person with two records (two organisations, two e-mails) links both, each through
    # the invitation sent to that record's own e-mail.
    max_user_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, nullable=True, index=True)
    )
    linked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (sa.Index("ix_employee_org_linked", "org_id", "max_user_id"),)

    def __repr__(self) -> str:
        return f"<Employee {self.email}>"


class InviteToken(SQLModel, table=True):
    """A single-use, expiring deep-link token; only its SHA-256 is stored."""

    __tablename__ = "invite_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    employee_id: int = Field(foreign_key="employee.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    used_by_max_user_id: int | None = Field(default=None, sa_type=sa.BigInteger)
