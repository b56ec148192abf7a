"""Directives with milestones, the register of transition orders, public channels (41-FZ),
escalations of lagging organisations and signed-off reports upward."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow

# heads: heads of organisations linked to Max; employees: employees linked to Max;
# members: members of source groups in their Max chats; groups: source groups switched.
METRICS = ("heads", "employees", "members", "groups")
EXEMPTIONS = ("arm_gs", "departmental", "other")
CHANNEL_PLATFORMS = ("telegram", "whatsapp", "vk", "viber", "other")
# active: only the old channel; duplicated: posts in both places; moved: the old one only
# points to Max; closed: the old one stopped.
CHANNEL_STATUSES = ("active", "duplicated", "moved", "closed")


class Directive(SQLModel, table=True):
    """An order from above, e.g. «Поручение губернатора № 12 от 01.07»."""

    __tablename__ = "directive"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=500)
    issued_by: str = Field(max_length=300)
    issued_at: date  # also the start of every milestone's trajectory
    scope_org_id: int = Field(foreign_key="organisation.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    def __repr__(self) -> str:
        return f"<Directive {self.id} {self.title!r}>"


class Milestone(SQLModel, table=True):
    """A metric reaching ``target_percent`` by ``due`` (a local date, end of that day)."""

    __tablename__ = "directive_milestone"

    id: int | None = Field(default=None, primary_key=True)
    directive_id: int = Field(foreign_key="directive.id", index=True)
    metric: str = Field(max_length=16)
    target_percent: float
    due: date

    __table_args__ = (
        sa.CheckConstraint("metric in ('heads','employees','members','groups')",
                           name="ck_milestone_metric"),
        sa.CheckConstraint("target_percent > 0 and target_percent <= 100",
                           name="ck_milestone_target"),
    )

    def __repr__(self) -> str:
        return f"<Milestone {self.metric} {self.target_percent}% by {self.due}>"


class TransitionAct(SQLModel, table=True):
    """An organisation's internal order on the move to Max, or its exemption (one per org)."""

    __tablename__ = "transition_act"

    org_id: int = Field(foreign_key="organisation.id", primary_key=True)
    act_number: str | None = Field(default=None, max_length=100)
    act_date: date | None = None
    # Scan stored under instance/ (relative path), its checked type and SHA-256.
    scan_path: str | None = Field(default=None, max_length=300)
    scan_type: str | None = Field(default=None, max_length=16)  # pdf | png | jpeg
    scan_sha256: str | None = Field(default=None, max_length=64)
    exemption: str | None = Field(default=None, max_length=16)  # arm_gs | departmental | other
    exemption_reason: str | None = Field(default=None, max_length=500)
    updated_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint(
            "(exemption is null and act_number is not null and act_date is not null) or "
            "(exemption in ('arm_gs','departmental','other') and act_number is null)",
            name="ck_transition_act_kind"),
    )

    @property
    def is_exempt(self) -> bool:
        return self.exemption is not None


class PublicChannel(SQLModel, table=True):
    """A public channel informing citizens, with its Max counterpart (41-FZ)."""

    __tablename__ = "public_channel"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    platform: str = Field(max_length=16)
    url: str = Field(max_length=500, unique=True)
    title: str = Field(max_length=500)
    max_url: str | None = Field(default=None, max_length=500)
    status: str = Field(max_length=16)
    # When the old channel stopped (status became moved or closed).
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("status in ('active','duplicated','moved','closed')",
                           name="ck_channel_status"),
        sa.Index("ix_public_channel_max", "org_id", "max_url"),
    )

    def __repr__(self) -> str:
        return f"<PublicChannel {self.url}>"


class Escalation(SQLModel, table=True):
    """Attention: an organisation behind a milestone's trajectory by more than the setting.

    Raised by the daily check that finds the lag, resolved by the check that no longer does.
    """

    __tablename__ = "directive_escalation"

    id: int | None = Field(default=None, primary_key=True)
    milestone_id: int = Field(foreign_key="directive_milestone.id", index=True)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    plan_percent: float
    fact_percent: float
    raised_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    emailed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReportRun(SQLModel, table=True):
    """A produced ministry report file (kept under instance/) and its sign-off."""

    __tablename__ = "report_run"

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    sha256: str = Field(max_length=64)
    file_path: str = Field(max_length=300)  # relative to instance/
    rows: int = 0
    produced_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    produced_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    signed_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    signed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
