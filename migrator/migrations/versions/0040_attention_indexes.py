"""progress: the «Needs attention» members read from one index

Revision ID: 0040
Revises: 0039

- ``ix_group_member_state_group_employee (state, group_id, employee_id)`` replaces
  ``ix_group_member_state_group (state, group_id)``: the memberships in a state come with
  their whole key from the index alone, so the members Max refused (a few thousand of
  300,000 at region scale) are listed and counted without reading their rows. Every query
  the old index served is served by the new one (same leading columns).
"""
from alembic import op

revision = "0040"
down_revision = "0039"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain index operations (no batch mode: a table copy on SQLite would lose triggers).
    op.create_index("ix_group_member_state_group_employee", "group_member",
                    ["state", "group_id", "employee_id"])
    op.drop_index("ix_group_member_state_group", table_name="group_member")


def downgrade() -> None:
    op.create_index("ix_group_member_state_group", "group_member", ["state", "group_id"])
    op.drop_index("ix_group_member_state_group_employee", table_name="group_member")
