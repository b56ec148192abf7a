"""The migration steps of each group (a state machine the runners claim when due; every
status change goes through :mod:`migrator.engine.lifecycle`), the rollbacks of groups'
moves, and process heartbeats."""

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


class LeasedTask(SQLModel):
    """The columns of a task a runner carries out under a lease, removing people from chats
    (a group's rollback, an account's unlink; :mod:`migrator.engine.leases`)."""

    status: str = Field(default="pending", max_length=16)  # pending, running, done, failed
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0  # runs that failed with a retryable error
    last_error: str | None = Field(default=None, max_length=2000)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    removed: int = 0
    absent: int = 0  # brought in by the tool, but no longer in the chat
    kept: int = 0  # kept: a chat admin, or needed by another group


ROLLBACK_STATUSES = ("pending", "running", "done", "failed")
ROLLBACK_MEMBER_STATUSES = ("planned", "removing", "removed", "absent", "kept")


class GroupRollback(LeasedTask, table=True):
    """A request to undo a group's move, and its progress (migrator.engine.rollback).

    Written in the transaction of the decision; a runner (or the CLI) carries it out:
    members the tool brought in are removed from the chat, the pinned announcement is
    unpinned, the group unlinked. ``open_group_id`` is the group's id while the request is
    pending or running (one open rollback per group)."""

    __tablename__ = "group_rollback"

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="source_group.id", index=True)
    open_group_id: int | None = Field(default=None, sa_column_kwargs={"unique": True})
    # The chat the group was linked to when asked (max_chat.id, and Max's own chat id).
    chat_pk: int | None = Field(default=None, foreign_key="max_chat.id")
    chat_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    message_id: str | None = Field(default=None, max_length=200)  # the pinned announcement
    reason: str = Field(max_length=2000)
    requested_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    requested_by: str = Field(max_length=200)  # user e-mail or "system:cli"
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    after_cutover: bool = False
    planned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # members listed
    unpin_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # intent
    unpinned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    unpinned: bool = False  # the announcement was still pinned and the tool unpinned it
    steps_skipped: int = 0

    __table_args__ = (
        sa.Index("ix_group_rollback_due", "status", "next_attempt_at"),
        sa.CheckConstraint("status in ('pending','running','done','failed')",
                           name="ck_group_rollback_status"),
    )

    def __repr__(self) -> str:
        return f"<GroupRollback {self.id} group={self.group_id} {self.status}>"


class RollbackMember(SQLModel, table=True):
    """One person a rollback may remove: ``removing`` is the intent, committed before the
    call; a re-run that finds them gone counts the removal as done."""

    __tablename__ = "rollback_member"

    rollback_id: int = Field(foreign_key="group_rollback.id", primary_key=True)
    employee_id: int = Field(foreign_key="employee.id", primary_key=True)
    max_user_id: int = Field(sa_type=sa.BigInteger)
    status: str = Field(default="planned", max_length=16)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("status in ('planned','removing','removed','absent','kept')",
                           name="ck_rollback_member_status"),
    )


class IdentityUnlink(LeasedTask, table=True):
    """An employee's Max account unbound by a coordinator (migrator.engine.unlink), and the
    removal of that account from the chats the tool added it to.

    Written in the transaction of the decision (``Employee.max_user_id`` cleared there); a
    runner (``run-due``) carries out the removals, each intent-first (``UnlinkRemoval``).
    ``action`` is ``unlink`` or ``rebind`` (a fresh invitation went to the employee's own
    e-mail)."""

    __tablename__ = "identity_unlink"

    id: int | None = Field(default=None, primary_key=True)
    employee_id: int = Field(foreign_key="employee.id", index=True)
    max_user_id: int = Field(sa_type=sa.BigInteger)  # the account that was unbound
    action: str = Field(default="unlink", max_length=16)
    reason: str = Field(max_length=2000)
    requested_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    requested_by: str = Field(max_length=200)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        sa.Index("ix_identity_unlink_due", "status", "next_attempt_at"),
        sa.CheckConstraint("status in ('pending','running','done','failed')",
                           name="ck_identity_unlink_status"),
        sa.CheckConstraint("action in ('unlink','rebind')", name="ck_identity_unlink_action"),
    )

    def __repr__(self) -> str:
        return f"<IdentityUnlink {self.id} employee={self.employee_id} {self.status}>"


class UnlinkRemoval(SQLModel, table=True):
    """One chat an unbound account is removed from: ``removing`` is the intent, committed
    before the call; a re-run that finds the account gone counts the removal as done."""

    __tablename__ = "unlink_removal"

    unlink_id: int = Field(foreign_key="identity_unlink.id", primary_key=True)
    chat_pk: int = Field(foreign_key="max_chat.id", primary_key=True)
    chat_id: int = Field(sa_type=sa.BigInteger)
    max_user_id: int = Field(sa_type=sa.BigInteger)
    status: str = Field(default="planned", max_length=16)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("status in ('planned','removing','removed','absent','kept')",
                           name="ck_unlink_removal_status"),
    )
