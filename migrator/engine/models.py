"""The migration steps of each group (a state machine the runners claim when due; every
status change goes through :mod:`migrator.engine.lifecycle`) and process heartbeats."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from migrator.db import UTCDateTime, utcnow

STEP_KINDS = ("invite", "add_members", "announce", "parallel_run", "cutover")
STEP_STATUSES = (
    "pending",  # planned, not yet due
    "due",  # due time passed, waiting for a runner
    "running",  # claimed by a runner (see claimed_until)
    "waiting",  # waiting for a coordinator's confirmation
    "succeeded",
    "failed",
    "skipped",
    "paused",
)


class Step(SQLModel, table=True):
    """One step of one group's migration: a state machine row that runners claim when due."""

    __tablename__ = "step"

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="source_group.id")
    wave_id: int = Field(foreign_key="wave.id", index=True)
    kind: str = Field(max_length=16)
    status: str = Field(default="pending", max_length=16)
    due_at: datetime = Field(sa_type=UTCDateTime)
    # When a runner may pick the step up next (due_at, or later after a failure/backoff).
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=2000)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Lease of the runner working on it; an expired lease means the runner died.
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirmed_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    note: str | None = Field(default=None, max_length=2000)  # skip/override reason, confirmation
    changed_by: str | None = Field(default=None, max_length=200)  # user e-mail or "job:<name>"
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # announce: the intent to post is committed before the call (message_id
    # "pending:<messages in the chat before>"), the real message id right after it and the
    # pin time after pinning — a restarted runner resumes instead of re-posting.
    send_intent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    message_id: str | None = Field(default=None, max_length=200)
    pinned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # cutover: a coordinator's override of the coverage threshold (reason in ``note``).
    override_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    override_reason: str | None = Field(default=None, max_length=2000)
    # When the failure/overdue escalation e-mail was queued (sent once per failure).
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("group_id", "kind", name="uq_step_group_kind"),
        sa.Index("ix_step_status_next", "status", "next_attempt_at"),
        sa.CheckConstraint(
            "kind in ('invite','add_members','announce','parallel_run','cutover')",
            name="ck_step_kind",
        ),
    )

    def __repr__(self) -> str:
        return f"<Step {self.kind} group={self.group_id} {self.status}>"


class Heartbeat(SQLModel, table=True):
    __tablename__ = "heartbeat"

    name: str = Field(primary_key=True, max_length=100)  # "scheduler", "runner:<host>:<pid>"
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    info: str | None = Field(default=None, max_length=500)
