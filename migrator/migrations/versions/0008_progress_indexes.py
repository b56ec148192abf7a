"""progress: indexes for the dashboard figures and the attention list

Revision ID: 0008
Revises: 0007
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain index operations (no batch mode: a table copy on SQLite would lose triggers).
    op.create_index("ix_group_member_status_group", "group_member", ["add_status", "group_id"])
    op.create_index("ix_step_kind_status", "step", ["kind", "status"])


def downgrade() -> None:
    op.drop_index("ix_step_kind_status", table_name="step")
    op.drop_index("ix_group_member_status_group", table_name="group_member")
