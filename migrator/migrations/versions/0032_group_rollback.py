"""engine: undo a group's move (group_rollback, rollback_member)

Revision ID: 0032
Revises: 0031
"""
import sqlalchemy as sa
from alembic import op

from migrator.db import UTCDateTime

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "group_rollback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("source_group.id"), nullable=False),
        sa.Column("open_group_id", sa.Integer(), nullable=True, unique=True),
        sa.Column("chat_pk", sa.Integer(), sa.ForeignKey("max_chat.id"), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), sa.ForeignKey("app_user.id"),
                  nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("after_cutover", sa.Boolean(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(2000), nullable=True),
        sa.Column("planned_at", UTCDateTime(), nullable=True),
        sa.Column("unpin_started_at", UTCDateTime(), nullable=True),
        sa.Column("unpinned_at", UTCDateTime(), nullable=True),
        sa.Column("unpinned", sa.Boolean(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("absent", sa.Integer(), nullable=False),
        sa.Column("kept", sa.Integer(), nullable=False),
        sa.Column("steps_skipped", sa.Integer(), nullable=False),
        sa.CheckConstraint("status in ('pending','running','done','failed')",
                           name="ck_group_rollback_status"),
    )
    op.create_index("ix_group_rollback_group_id", "group_rollback", ["group_id"])
    op.create_index("ix_group_rollback_due", "group_rollback", ["status", "next_attempt_at"])
    op.create_table(
        "rollback_member",
        sa.Column("rollback_id", sa.Integer(), sa.ForeignKey("group_rollback.id"),
                  primary_key=True),
        sa.Column("employee_id", sa.Integer(), sa.ForeignKey("employee.id"), primary_key=True),
        sa.Column("max_user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("status in ('planned','removing','removed','absent','kept')",
                           name="ck_rollback_member_status"),
    )


def downgrade() -> None:
    op.drop_table("rollback_member")
    op.drop_table("group_rollback")
