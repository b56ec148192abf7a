"""The bot-message outbox: replies to people in their Max dialog, sent after commit."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow


class BotMessage(SQLModel, table=True):
    """A message the bot owes a person in their dialog (e.g. the answer to Start).

    Written in the same transaction as the decision (linking an employee), sent later by
    :func:`migrator.people.invites.send_bot_messages`, so a crash loses no reply and a
    repeated update makes no second one. While ``status`` is ``sending``,
    ``next_attempt_at`` is the end of the sender's lease.
    """

    __tablename__ = "bot_message"

    id: int | None = Field(default=None, primary_key=True)
    # e.g. "botreply:<update dedup key>" — the same decision never makes two messages.
    idem_key: str = Field(max_length=200, unique=True)
    max_user_id: int = Field(sa_type=sa.BigInteger, index=True)
    text: str = Field(sa_type=sa.Text)
    # pending | sending | sent | failed
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (sa.Index("ix_bot_message_status_next", "status", "next_attempt_at"),)

    def __repr__(self) -> str:
        return f"<BotMessage {self.idem_key} {self.status}>"
