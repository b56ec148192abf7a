"""identity: several employee records may share one Max account; unlinking an account
(identity_unlink, unlink_removal)

Revision ID: 0036
Revises: 0035

``employee.max_user_id`` loses its unique constraint (one person with two records links
both, each through the invitation sent to that record's own e-mail) and gets a plain index.
"""
import sqlalchemy as sa
from alembic import op

from migrator.db import UTCDateTime

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("employee", naming_convention=_SQLITE_NAMES) as batch:
            batch.drop_constraint("uq_employee_max_user_id", type_="unique")
            batch.create_index("ix_employee_max_user_id", ["max_user_id"])
    else:
        op.drop_constraint("employee_max_user_id_key", "employee", type_="unique")
        op.create_index("ix_employee_max_user_id", "employee", ["max_user_id"])
    op.create_table(
        "identity_unlink",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("employee_id", sa.Integer(), sa.ForeignKey("employee.id"), nullable=False),
        sa.Column("max_user_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), sa.ForeignKey("app_user.id"),
                  nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(2000), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("absent", sa.Integer(), nullable=False),
        sa.Column("kept", sa.Integer(), nullable=False),
        sa.CheckConstraint("status in ('pending','running','done','failed')",
                           name="ck_identity_unlink_status"),
        sa.CheckConstraint("action in ('unlink','rebind')", name="ck_identity_unlink_action"),
    )
    op.create_index("ix_identity_unlink_employee_id", "identity_unlink", ["employee_id"])
    op.create_index("ix_identity_unlink_due", "identity_unlink", ["status", "next_attempt_at"])
    op.create_table(
        "unlink_removal",
        sa.Column("unlink_id", sa.Integer(), sa.ForeignKey("identity_unlink.id"),
                  primary_key=True),
        sa.Column("chat_pk", sa.Integer(), sa.ForeignKey("max_chat.id"), primary_key=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("max_user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("status in ('planned','removing','removed','absent','kept')",
                           name="ck_unlink_removal_status"),
    )


def downgrade() -> None:
    op.drop_table("unlink_removal")
    op.drop_table("identity_unlink")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("employee") as batch:
            batch.drop_index("ix_employee_max_user_id")
            batch.create_unique_constraint("uq_employee_max_user_id", ["max_user_id"])
    else:
        op.drop_index("ix_employee_max_user_id", table_name="employee")
        op.create_unique_constraint("employee_max_user_id_key", "employee", ["max_user_id"])
