"""Source groups (WhatsApp/Telegram/...), their members and their mapping to a Max chat."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow

PLATFORMS = ("whatsapp", "telegram", "viber", "vk", "other")


class SourceGroup(SQLModel, table=True):
    __tablename__ = "source_group"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=128, unique=True, index=True)
    name: str = Field(max_length=500)
    platform: str = Field(max_length=16, index=True)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    owner_email: str | None = Field(default=None, max_length=320)
    # The mapping: one source group → one Max chat (a chat may serve several groups).
    max_chat_id: int | None = Field(default=None, foreign_key="max_chat.id", index=True)
    linked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    linked_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    wave_id: int | None = Field(default=None, foreign_key="wave.id", index=True)
    # Set when something outside the plan happened (bot removed from the chat, ...).
    needs_attention: bool = Field(default=False, index=True)
    attention_reason: str | None = Field(default=None, max_length=500)
    member_count: int = 0  # denormalised count of GroupMember rows, kept by the services
    # Memberships in the Max chat (states.IN_CHAT): kept exact by triggers on group_member
    # (migration 0038) on every write path. Never set it from Python.
    members_in_chat: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint(
            "platform in ('whatsapp','telegram','viber','vk','other')", name="ck_group_platform"
        ),
    )

    def __repr__(self) -> str:
        return f"<SourceGroup {self.key}>"


class GroupMember(SQLModel, table=True):
    """A person in a source group, with their progress towards the Max chat."""

    __tablename__ = "group_member"

    group_id: int = Field(foreign_key="source_group.id", primary_key=True)
    employee_id: int = Field(foreign_key="employee.id", primary_key=True, index=True)
    invited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminder_count: int = 0
    # The membership's way into the Max chat: see migrator.groups.states (the one table).
    state: str = Field(default="not_linked", max_length=16)
    state_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str | None = Field(default=None, max_length=500)  # of retrying / unaddable
    attempts: int = 0  # add calls made for this membership
    # When the engine may try this membership next (None: as soon as its add step is open).
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # In the chat because of the tool (its add call, or the join link it sent).
    by_tool: bool = False
    added_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        sa.Index("ix_group_member_group_state", "group_id", "state"),
        sa.CheckConstraint(
            "state in ('not_linked','linked','adding','added','retrying','unaddable',"
            "'invited_by_link','joined','left')", name="ck_group_member_state"),
    )
