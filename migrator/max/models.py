"""What the app knows about Max: chats the bot is in, their members, received updates."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow

CHAT_STATUSES = ("discovered", "linked", "removed")
# The schema's ChatAdminPermission names: without read_all_messages a bot cannot pin and
# gets no updates from the chat; "write" in a group chat is editing and deleting messages,
# which the migration does not need.
REQUIRED_PERMISSIONS = ("read_all_messages", "add_remove_members", "pin_message")
# Max's names of the bot's rights, as people read them
PERMISSION_LABELS = {"read_all_messages": _l("read all messages"),
                     "add_remove_members": _l("add and remove members"),
                     "pin_message": _l("pin messages"), "write": _l("write messages")}


class MaxChat(SQLModel, table=True):
    __tablename__ = "max_chat"

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_column=sa.Column(sa.BigInteger, unique=True, nullable=False))
    title: str = Field(default="", max_length=500)
    # The chat's join link (``Chat.link`` of GET /chats/{chatId}) as last checked; sent to
    # people Max will not add (the fallback). None: the chat has none, or never checked.
    link: str | None = Field(default=None, max_length=500)
    status: str = Field(default="discovered", max_length=16, index=True)
    # Organisation the chat serves: set on linking, or from the employee who added the bot.
    org_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    added_by_max_user_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    added_by_name: str | None = Field(default=None, max_length=300)
    added_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Pre-flight: the bot's admin rights in the chat, as last checked.
    bot_is_admin: bool = False
    bot_permissions: str = Field(default="", max_length=500)  # comma-separated
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the last checks first found rights missing (None: complete or never checked);
    # the re-check back-off counts from here (migrator.max.service.rights_recheck_interval).
    rights_missing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Timestamp (Unix ms) of the newest update applied to this chat, to ignore stale ones.
    last_event_ts: int = Field(default=0, sa_type=sa.BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("status in ('discovered','linked','removed')", name="ck_chat_status"),
    )

    @property
    def permissions(self) -> set[str]:
        return {p for p in self.bot_permissions.split(",") if p}

    @property
    def missing_permissions(self) -> list[str]:
        have = self.permissions if self.bot_is_admin else set()
        return [p for p in REQUIRED_PERMISSIONS if p not in have]

    @property
    def preflight_ok(self) -> bool:
        return self.status != "removed" and not self.missing_permissions

    def __repr__(self) -> str:
        return f"<MaxChat {self.chat_id} {self.status}>"


class MaxChatMember(SQLModel, table=True):
    """Membership of a Max user in a chat, as reported by updates and member listings."""

    __tablename__ = "max_chat_member"

    chat_id: int = Field(foreign_key="max_chat.id", primary_key=True)
    max_user_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    is_present: bool = True
    last_event_ts: int = Field(default=0, sa_type=sa.BigInteger)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MaxUpdate(SQLModel, table=True):
    """Every update taken in from Max, stored once (Max retries and may repeat)."""

    __tablename__ = "max_update"

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 of the update's canonical JSON: the same delivery twice is one row.
    dedup_key: str = Field(max_length=64, unique=True)
    update_type: str = Field(max_length=64, index=True)
    chat_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    max_user_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    timestamp: int = Field(default=0, sa_type=sa.BigInteger)  # Unix ms, as sent by Max
    payload: str = Field(sa_type=sa.Text)  # the raw JSON
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    error: str | None = Field(default=None, max_length=1000)


class MaxDialogUser(SQLModel, table=True):
    """A Max user's dialog with the bot: whether they stopped the bot, when they last got
    the help answer. Keyed by Max user id (people who are no employee too)."""

    __tablename__ = "max_dialog_user"

    max_user_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    # Timestamps (Unix ms) of the newest bot_started / bot_stopped: stopped when newer
    started_ts: int = Field(default=0, sa_type=sa.BigInteger)
    stopped_ts: int = Field(default=0, sa_type=sa.BigInteger)
    help_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def stopped(self) -> bool:
        return self.stopped_ts > self.started_ts
