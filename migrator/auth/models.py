"""Users of the web UI and API, their organisation scopes, API tokens, sign-in attempts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow

ROLES = ("admin", "coordinator", "auditor")


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    full_name: str = Field(default="", max_length=300)
    password_hash: str = Field(max_length=300)  # argon2
    role: str = Field(max_length=16)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Part of every session's user id: raising it ends every session of the user (sign-out,
    # a new password, deactivation).
    session_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Base32 TOTP secret of an admin who set up a second factor; None: none.
    totp_secret: str | None = Field(default=None, max_length=64)

    __table_args__ = (
        sa.CheckConstraint("role in ('admin','coordinator','auditor')", name="ck_user_role"),
    )

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """The session's user id: ``"<id>:<session_version>"``."""
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class UserOrgScope(SQLModel, table=True):
    """A coordinator (or scoped auditor) sees these organisations and all below them."""

    __tablename__ = "user_org_scope"

    user_id: int = Field(foreign_key="app_user.id", primary_key=True)
    org_id: int = Field(foreign_key="organisation.id", primary_key=True, index=True)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)  # SHA-256 of the token
    prefix: str = Field(max_length=12)  # first characters, to recognise it in lists
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # None: never


class LoginAttempt(SQLModel, table=True):
    """Failed sign-ins, counted per e-mail and per client address for throttling."""

    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, index=True)
    client_ip: str = Field(max_length=64, index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class AuthEventWindow(SQLModel, table=True):
    """Failed or throttled sign-ins of one e-mail/address: one audit event per window, which
    counts the attempts since the previous one (the trail cannot be grown at will)."""

    __tablename__ = "auth_event_window"

    id: int | None = Field(default=None, primary_key=True)
    action: str = Field(max_length=32)  # the audit action, e.g. auth.login_failed
    email: str = Field(max_length=320)  # "" for per-address events
    client_ip: str = Field(max_length=64)
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)  # the window's audit event
    pending: int = Field(default=0)  # attempts since that event, not yet audited

    __table_args__ = (
        sa.UniqueConstraint("action", "email", "client_ip", name="uq_auth_event_window_key"),
    )
