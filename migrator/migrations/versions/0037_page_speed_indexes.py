"""progress and waves: step indexes for overdue steps and a wave's groups

Revision ID: 0037
Revises: 0036

- ``ix_step_status_due (status, due_at)``: overdue steps are read as one range on ``due_at``
  per unfinished status (a few thousand rows at region scale) instead of every group's steps.
- ``ix_step_wave_group_status (wave_id, group_id, status)``: a wave's groups and their
  states from the index alone (the wave page's figures and its state filter).
"""
from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain index operations (no batch mode: a table copy on SQLite would lose triggers).
    op.create_index("ix_step_status_due", "step", ["status", "due_at"])
    op.create_index("ix_step_wave_group_status", "step", ["wave_id", "group_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_step_wave_group_status", table_name="step")
    op.drop_index("ix_step_status_due", table_name="step")
